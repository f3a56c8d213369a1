//! Keras' `Hashing` layer (tf_keras `layers/preprocessing/hashing.py`): values to bins by a
//! hash, no vocabulary.
//!
//! Strings are hashed as their UTF-8 bytes, integers as their decimal text (`tf.as_string`).
//! Without a salt the hash is FarmHash `Fingerprint64` (`tf.strings.to_hash_bucket_fast`);
//! with one, SipHash-2-4 keyed by the salt pair (`tf.strings.to_hash_bucket_strong`). The
//! bin is the hash modulo `num_bins`. With a `mask_value` and `num_bins > 1`, values hash into
//! `num_bins - 1` bins shifted up by one and the mask value gets bin 0. All bit-exact with
//! TensorFlow 2.21 (`tests/keras_lookups.rs`).

use ndarray::{Array, ArrayBase, Data, Dimension};

use super::farmhash::fingerprint64;
use super::siphash::siphash24;
use crate::error::{Error, Result};

/// The value that `Hashing` maps to bin 0 (`mask_value`): a string for string inputs, an
/// integer for integer inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskValue {
    /// A string mask value (often `""`).
    Text(String),
    /// An integer mask value (often 0).
    Integer(i64),
}

impl From<&str> for MaskValue {
    fn from(value: &str) -> Self {
        MaskValue::Text(value.to_string())
    }
}

impl From<String> for MaskValue {
    fn from(value: String) -> Self {
        MaskValue::Text(value)
    }
}

impl From<i64> for MaskValue {
    fn from(value: i64) -> Self {
        MaskValue::Integer(value)
    }
}

/// Keras' `Hashing(num_bins, mask_value=None, salt=None)` with `output_mode="int"`.
///
/// # Shapes
/// The bins have the shape of the input.
///
/// ```
/// use ndkeras::preprocessing::Hashing;
///
/// // The examples of Keras' docstring.
/// let farm = Hashing::new(3)?;
/// assert_eq!(farm.call(&["A", "B", "C", "D", "E"])?.to_vec(), [1, 0, 1, 1, 2]);
/// let masked = Hashing::new(3)?.mask_value("");
/// assert_eq!(masked.call(&["A", "B", "", "C", "D"])?.to_vec(), [1, 1, 0, 2, 2]);
/// let salted = Hashing::new(3)?.salt([133, 137]);
/// assert_eq!(salted.call(&["A", "B", "C", "D", "E"])?.to_vec(), [1, 2, 1, 0, 2]);
/// # Ok::<(), ndkeras::Error>(())
/// ```
///
/// As a model layer (it implements [`Layer`](crate::layer::Layer)) it takes strings or
/// integers (float32 whole numbers too) of any shape and gives `int64` bins of that shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashing {
    name: String,
    trainable: bool,
    num_bins: u64,
    mask_value: Option<MaskValue>,
    salt: Option<[u64; 2]>,
}

impl Hashing {
    /// Hashing into `num_bins` bins, no mask value, no salt (FarmHash).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `num_bins = 0` or above `i64::MAX` (TensorFlow's
    /// bucket count is an int64).
    pub fn new(num_bins: u64) -> Result<Self> {
        if num_bins == 0 || num_bins > i64::MAX as u64 {
            return Err(Error::invalid_argument(
                "Hashing",
                "num_bins",
                num_bins,
                "a positive number of bins (at most 2^63 - 1)",
            ));
        }
        Ok(Hashing {
            name: crate::layer::unique_name("hashing"),
            trainable: true,
            num_bins,
            mask_value: None,
            salt: None,
        })
    }

    /// The layer's name (Keras' `name`; default `hashing`, `hashing_1`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same layer with another name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Keras' `trainable` flag, kept for the config (nothing to train).
    pub fn trainable(&self) -> bool {
        self.trainable
    }

    /// Sets Keras' `trainable` flag.
    pub fn set_trainable(&mut self, trainable: bool) {
        self.trainable = trainable;
    }

    /// `mask_value`, if set.
    pub fn get_mask_value(&self) -> Option<&MaskValue> {
        self.mask_value.as_ref()
    }

    /// The value sent to bin 0 (default none). Ignored with `num_bins = 1`, as in Keras.
    pub fn mask_value(mut self, mask_value: impl Into<MaskValue>) -> Self {
        self.mask_value = Some(mask_value.into());
        self
    }

    /// Hash with SipHash-2-4 keyed by `salt` (default: FarmHash, no salt). Keras' single
    /// integer salt `k` is `[k, k]`; a negative Python salt is its two's complement here.
    pub fn salt(mut self, salt: [u64; 2]) -> Self {
        self.salt = Some(salt);
        self
    }

    /// `num_bins`.
    pub fn num_bins(&self) -> u64 {
        self.num_bins
    }

    /// `salt`, if set.
    pub fn get_salt(&self) -> Option<[u64; 2]> {
        self.salt
    }

    /// The hash of some bytes under this layer's salt (or none).
    #[inline]
    fn hash(&self, bytes: &[u8]) -> u64 {
        match self.salt {
            Some(key) => siphash24(key, bytes),
            None => fingerprint64(bytes),
        }
    }

    /// The bin of one value given as bytes, `masked` telling whether it is the mask value.
    #[inline]
    fn bin(&self, bytes: &[u8], masked: bool) -> i64 {
        // num_bins <= i64::MAX, so every bin fits.
        if self.num_bins > 1 && self.mask_value.is_some() {
            if masked {
                0
            } else {
                (self.hash(bytes) % (self.num_bins - 1) + 1) as i64
            }
        } else {
            (self.hash(bytes) % self.num_bins) as i64
        }
    }

    /// The bin of one string.
    ///
    /// # Errors
    /// [`Error::IncompatibleDtype`] when the mask value is an integer.
    pub fn bin_of(&self, value: &str) -> Result<i64> {
        let masked = match &self.mask_value {
            None => false,
            Some(MaskValue::Text(mask)) => mask == value,
            Some(MaskValue::Integer(_)) => return Err(self.mask_mismatch("strings", "integer")),
        };
        Ok(self.bin(value.as_bytes(), masked))
    }

    /// The bin of one integer (hashed as its decimal text).
    ///
    /// # Errors
    /// [`Error::IncompatibleDtype`] when the mask value is a string.
    pub fn bin_of_integer(&self, value: i64) -> Result<i64> {
        let masked = match &self.mask_value {
            None => false,
            Some(MaskValue::Integer(mask)) => *mask == value,
            Some(MaskValue::Text(_)) => return Err(self.mask_mismatch("integers", "string")),
        };
        let mut buffer = itoa_buffer();
        Ok(self.bin(decimal(value, &mut buffer), masked))
    }

    fn mask_mismatch(&self, input: &str, mask: &str) -> Error {
        Error::IncompatibleDtype {
            context: format!("Hashing with a {mask} mask_value"),
            expected: format!("{mask} inputs"),
            got: input.into(),
        }
    }

    /// The bins of strings.
    ///
    /// # Errors
    /// See [`bin_of`](Self::bin_of).
    pub fn call<S: AsRef<str>>(&self, inputs: &[S]) -> Result<ndarray::Array1<i64>> {
        inputs.iter().map(|s| self.bin_of(s.as_ref())).collect()
    }

    /// The bins of an array of strings, in its shape.
    ///
    /// # Errors
    /// See [`bin_of`](Self::bin_of).
    pub fn call_array<T, S, D>(&self, inputs: &ArrayBase<S, D>) -> Result<Array<i64, D>>
    where
        T: AsRef<str>,
        S: Data<Elem = T>,
        D: Dimension,
    {
        let mut first_error = None;
        let bins = inputs.map(|s| match self.bin_of(s.as_ref()) {
            Ok(bin) => bin,
            Err(e) => {
                first_error.get_or_insert(e);
                0
            }
        });
        first_error.map_or(Ok(bins), Err)
    }

    /// The bins of integers.
    ///
    /// # Errors
    /// See [`bin_of_integer`](Self::bin_of_integer).
    pub fn call_integers(&self, inputs: &[i64]) -> Result<ndarray::Array1<i64>> {
        inputs.iter().map(|&v| self.bin_of_integer(v)).collect()
    }
}

/// Room for the longest `i64` in decimal (`-9223372036854775808`, 20 bytes).
fn itoa_buffer() -> [u8; 20] {
    [0; 20]
}

/// `value` in decimal, written at the end of `buffer`, without allocating.
fn decimal(value: i64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut magnitude = value.unsigned_abs();
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if value < 0 {
        at -= 1;
        buffer[at] = b'-';
    }
    &buffer[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_to_string() {
        for v in [0, 1, -1, 42, i64::MIN, i64::MAX, -10, 1_000_000] {
            let mut buffer = itoa_buffer();
            assert_eq!(decimal(v, &mut buffer), v.to_string().as_bytes());
        }
    }
}
