//! The merge and shape layers as Keras JSON: `Add`, `Subtract`, `Multiply`, `Average`,
//! `Maximum`, `Minimum` (the common fields only, as Keras' `_Merge.get_config`),
//! `Concatenate` (`axis`), `Dot` (`axes`, `normalize`) and `Reshape` (`target_shape`).

use serde_json::{Value, json};

use crate::config::{KerasConfig, bool_or, common, common_config, named};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::layers::{
    Add, Average, Concatenate, Dot, DotAxes, Maximum, Minimum, Multiply, Reshape, Subtract,
};

/// `from_config` and `get_config` of an elementwise merge: only the common fields.
macro_rules! elementwise_config {
    ($($type:ident),*) => {$(
        impl $type {
            #[doc = concat!("A `", stringify!($type), "` layer from its Keras config (`name`, `trainable`, `dtype`).")]
            ///
            /// # Errors
            /// [`Error::InvalidArgument`] naming an invalid field.
            pub fn from_config(config: &Value) -> Result<Self> {
                let (name, _) = common(config, stringify!($type))?;
                Ok(named(name, $type::new, $type::with_name))
            }
        }

        impl KerasConfig for $type {
            /// `name`, `trainable`, `dtype`.
            fn get_config(&self) -> Value {
                Value::Object(common_config(self.name(), true))
            }
        }
    )*};
}

elementwise_config!(Add, Subtract, Multiply, Average, Maximum, Minimum);

/// An integer field that may be negative (an axis).
fn axis_value(value: &Value, owner: &str, field: &str) -> Result<isize> {
    value
        .as_i64()
        .and_then(|a| isize::try_from(a).ok())
        .ok_or_else(|| {
            Error::invalid_argument(format!("{owner} config"), field, value, "an integer")
        })
}

impl Concatenate {
    /// A `Concatenate` layer from its Keras config (`axis`, default `-1`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming an invalid field.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "Concatenate";
        let (name, _) = common(config, owner)?;
        let axis = match config.get("axis") {
            None | Some(Value::Null) => -1,
            Some(v) => axis_value(v, owner, "axis")?,
        };
        Ok(named(name, Concatenate::new, Concatenate::with_name).axis(axis))
    }
}

impl KerasConfig for Concatenate {
    /// `name`, `trainable`, `dtype`, `axis`.
    fn get_config(&self) -> Value {
        let mut map = common_config(self.name(), true);
        map.insert("axis".into(), json!(self.axis_value()));
        Value::Object(map)
    }
}

impl Dot {
    /// A `Dot` layer from its Keras config: `axes` (an integer, or a list of two),
    /// `normalize` (default `false`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a missing or invalid field.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "Dot";
        let (name, _) = common(config, owner)?;
        let axes = match config.get("axes") {
            None => {
                return Err(Error::invalid_argument(
                    "Dot config",
                    "axes",
                    "missing",
                    "the field to be present",
                ));
            }
            Some(Value::Array(items)) => match items.as_slice() {
                [first, second] => DotAxes::Pair(
                    axis_value(first, owner, "axes")?,
                    axis_value(second, owner, "axes")?,
                ),
                _ => {
                    return Err(Error::invalid_argument(
                        "Dot config",
                        "axes",
                        Value::Array(items.clone()),
                        "an integer or a list of two integers",
                    ));
                }
            },
            Some(v) => DotAxes::Same(axis_value(v, owner, "axes")?),
        };
        let normalize = bool_or(config, "normalize", owner, false)?;
        let make = || match axes {
            DotAxes::Same(a) => Dot::new(a),
            DotAxes::Pair(a, b) => Dot::with_axes(a, b),
        };
        Ok(named(name, make, Dot::with_name).normalize(normalize))
    }
}

impl KerasConfig for Dot {
    /// `name`, `trainable`, `dtype`, `axes` (an integer or a list of two, as given),
    /// `normalize`.
    fn get_config(&self) -> Value {
        let mut map = common_config(self.name(), true);
        let axes = match self.axes() {
            DotAxes::Same(a) => json!(a),
            DotAxes::Pair(a, b) => json!([a, b]),
        };
        map.insert("axes".into(), axes);
        map.insert("normalize".into(), json!(self.is_normalized()));
        Value::Object(map)
    }
}

impl Reshape {
    /// A `Reshape` layer from its Keras config (`target_shape`: a list of lengths, at most
    /// one `-1`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a missing or invalid field.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "Reshape";
        let (name, _) = common(config, owner)?;
        let invalid = |v: &Value| {
            Error::invalid_argument(
                "Reshape config",
                "target_shape",
                v,
                "a list of integers (lengths, at most one -1)",
            )
        };
        let target = config.get("target_shape").ok_or_else(|| {
            Error::invalid_argument(
                "Reshape config",
                "target_shape",
                "missing",
                "the field to be present",
            )
        })?;
        let items = target.as_array().ok_or_else(|| invalid(target))?;
        let dims = items
            .iter()
            .map(|d| {
                d.as_i64()
                    .and_then(|d| isize::try_from(d).ok())
                    .ok_or_else(|| invalid(target))
            })
            .collect::<Result<Vec<isize>>>()?;
        let layer = named(name, || Reshape::new(&dims), Reshape::with_name);
        layer.validate()?;
        Ok(layer)
    }
}

impl KerasConfig for Reshape {
    /// `name`, `trainable`, `dtype`, `target_shape`.
    fn get_config(&self) -> Value {
        let mut map = common_config(self.name(), true);
        map.insert("target_shape".into(), json!(self.target_shape()));
        Value::Object(map)
    }
}
