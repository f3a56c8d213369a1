//! Keras for Rust users: each Keras call and its ndkeras counterpart.
//!
//! This module holds no code. It maps the Keras 2 (`tf_keras`) API you know to this crate,
//! and lists where ndkeras deliberately behaves differently.
//!
//! ## Layers
//!
//! | Keras (Python) | ndkeras (Rust) |
//! |---|---|
//! | `Embedding(1000, 64)` | `Embedding::new(1000, 64)` |
//! | `Embedding(1000, 64, input_length=10)` | `Embedding::new(1000, 64).input_length(10)` |
//! | `Embedding(10, 3, input_length=(2, None))` | `Embedding::new(10, 3).input_length_per_axis(vec![Some(2), None])` |
//! | `Embedding(3, 2, mask_zero=True)` | `Embedding::new(3, 2).mask_zero(true)` |
//! | `Embedding(3, 2, weights=[W])` | `Embedding::new(3, 2).weights(vec![w])` |
//! | `Embedding(3, 2, embeddings_initializer="zeros")` | `Embedding::new(3, 2).embeddings_initializer("zeros".parse()?)` |
//! | `Embedding(3, 2, name="emb", trainable=False)` | `Embedding::new(3, 2).with_name("emb").trainable(false)` |
//! | `layer(x)` | `layer.apply(&Tensor::from(x))?` |
//! | `layer.built` | `layer.is_built()` |
//! | `layer.build(input_shape)` | `layer.build(&[None, Some(10)])?` |
//! | `layer.get_weights()` / `layer.set_weights([W])` | `layer.get_weights()` / `layer.set_weights(vec![w])?` |
//! | `layer.weights` (the variables: name, shape, trainable) | `layer.variables()` (`Vec<&Weight>`) |
//! | `model.layers[0].trainable = False` (fine-tuning) | `model.get_layer_mut(0).unwrap().set_trainable(false)` (the optimizer keeps every slot) |
//! | `K.get_value(layer.embeddings)` | `layer.embeddings()` (`None` until built) |
//! | `layer.compute_output_shape((None, 10))` | `layer.compute_output_shape(&[None, Some(10)])?` |
//! | `layer.compute_mask(x)` | `layer.compute_mask(&Tensor::from(x), None)?` |
//! | `out._keras_mask` | `out.mask()` |
//! | `layer.count_params()` | `layer.count_params()?` |
//!
//! ## Initializers
//!
//! | Keras | ndkeras |
//! |---|---|
//! | `"uniform"`, `RandomUniform(-0.05, 0.05, seed=1)` | `"uniform".parse()?`, `Initializer::RandomUniform { minval: -0.05, maxval: 0.05, seed: Some(1) }` |
//! | `Constant(2.5)` | `Initializer::constant(2.5)` |
//! | `Constant(np_array)` | `Initializer::Constant(array.into_dyn())` (same shape as the table) |
//! | `GlorotUniform(seed=7)` | `Initializer::GlorotUniform { seed: Some(7) }` or `"glorot_uniform".parse::<Initializer>()?.with_seed(7)` |
//! | `VarianceScaling(2.0, "fan_out", "uniform")` | `Initializer::VarianceScaling { scale: 2.0, mode: FanMode::FanOut, distribution: Distribution::Uniform, seed: None }` |
//! | `Orthogonal(gain=2.0)`, `Identity()` | `Initializer::Orthogonal { gain: 2.0, seed: None }`, `Initializer::Identity { gain: 1.0 }` |
//!
//! ## Models
//!
//! | Keras | ndkeras |
//! |---|---|
//! | `model = Sequential()` | `let mut model = Sequential::new();` |
//! | `model.add(layer)` | `model.add(layer)?` |
//! | `model.compile("rmsprop", "mse")` | `model.compile("rmsprop".parse()?, "mse".parse()?)?` |
//! | `model.compile(RMSprop(learning_rate=0.01), "mse")` | `model.compile(RMSprop::default().learning_rate(0.01).into(), Loss::MeanSquaredError)?` |
//! | `model.predict(x)` | `model.predict(x)?` |
//! | `model.predict(x, batch_size=64)` | `model.predict_with_batch_size(x, 64)?` |
//! | `model.output_shape` | `model.output_shape()?` |
//! | `model.layers[0]`, `model.get_layer(index=0)` | `model.get_layer(0)`, or typed: `model.layer::<Embedding>(0)` |
//! | `model.summary()` | `println!("{}", model.summary()?)` |
//!
//! ## The functional API
//!
//! | Keras | ndkeras |
//! |---|---|
//! | `ids = keras.Input(shape=(3,), dtype="int32", name="ids")` | `let ids = graph.input(Input::new(&[3]).dtype(DType::Int32).with_name("ids"));` (with `let mut graph = Graph::new();`) |
//! | `rows = Embedding(9, 4)(ids)` | `let rows = graph.apply(Embedding::new(9, 4), &[ids])?;` |
//! | `table = Embedding(9, 4)`; `a = table(x)`; `b = table(y)` (shared) | `let table = graph.add(Embedding::new(9, 4))?;` `let a = graph.call(table, &[x])?;` `let b = graph.call(table, &[y])?;` |
//! | `keras.Model(inputs=[a, b], outputs=[c, d])` | `graph.model(&[a, b], &[c, d])?` |
//! | `model.compile(opt, loss=["binary_crossentropy", "mse"], loss_weights=[1, 0.5])` | `model.compile(opt, vec![Loss::BinaryCrossentropy, Loss::MeanSquaredError], Some(vec![1.0, 0.5]))?` |
//! | `model.predict([xa, xb])` / `model.predict({"a": xa, "b": xb})` | `model.predict(vec![xa, xb])?` / `model.predict_named(vec![("a", xa), ("b", xb)])?` (one array per output) |
//! | `model.fit([xa, xb], [yc, yd], epochs=3)` | `model.fit(vec![xa, xb], vec![yc, yd], FitOptions::default().epochs(3))?` |
//! | `model.fit({"ids": x}, {"click": yc, "category": yk})` | `model.fit_named(vec![("ids", x)], vec![("click", yc), ("category", yk)], options)?` |
//! | `model.train_on_batch([xa, xb], [y])`, `model.evaluate(...)` | `model.train_on_batch(vec![xa, xb], vec![y])?`, `model.evaluate(x, y)?` (`[("loss", ..), ("click_loss", ..), ..]`) |
//! | `history.history["click_loss"]` | `history.get("click_loss")` |
//! | `model.to_json()`, `keras.models.model_from_json(s)` (functional) | `model.to_json()`, `Model::from_json(&s)?` (Keras 2's `Functional` format; weights not included: `load_weights`) |
//! | `model.summary()` | `println!("{}", model.summary())` (with "Connected to") |
//!
//! ## Training
//!
//! | Keras | ndkeras |
//! |---|---|
//! | `compile(..., metrics=["accuracy", "mae", TopKCategoricalAccuracy(k=2, name="top2")])` | `compile_with_metrics(.., vec!["accuracy".parse()?, "mae".parse()?, Metric::top_k_categorical_accuracy(2).with_name("top2")])?` (`"accuracy"` resolved from the shapes, as Keras) |
//! | `history.history["val_accuracy"]` | `history.get("val_accuracy")` |
//! | `model.evaluate(x, y, return_dict=True)` | `model.evaluate_with_metrics(x, y)?` (`[("loss", ..), ("accuracy", ..)]`) |
//! | `keras.metrics.binary_accuracy(y_true, y_pred)` | `Metric::new(MetricKind::BinaryAccuracy { threshold: 0.5 }).values(&y_pred, &y_true)?` |
//! | `Dense(1, activation="sigmoid")` | `Dense::new(1).activation("sigmoid")` or `.activation(Activation::Sigmoid)` (an unknown name is reported when the layer is added) |
//! | `model.predict([[1, 2], [3, 4]])` (a list of lists) | `model.predict([[1i64, 2], [3, 4]])?`, `model.predict(Tensor::try_from(rows)?)?` for a `Vec<Vec<i64>>` (ragged rows are an error), `predict(&x)`, `predict(x.view())` |
//! | `Embedding(..., weights=[table])` with a 2-D table | `.weights(vec![table])` with `table` an `Array2` or an `ArrayD` |
//! | `GlobalAveragePooling1D()`, `Flatten()`, `Dropout(0.2, seed=1)` | `GlobalAveragePooling1D::new()`, `Flatten::new()`, `Dropout::new(0.2).seed(1)` |
//! | `Add()([a, b])`, `Subtract()`, `Multiply()`, `Average()`, `Maximum()`, `Minimum()` | `Add::new().call_of(&[&a, &b])?`, `Subtract::new()`, ...: a merge layer takes a list ([`Layer::call_of`](crate::layer::Layer::call_of)); given one tensor it returns an error |
//! | `Concatenate(axis=1)([a, b])` | `Concatenate::new().axis(1).call_of(&[&a, &b])?` |
//! | `Dot(axes=1, normalize=True)([u, v])`, `Dot(axes=(2, 2))` | `Dot::new(1).normalize(true).call_of(&[&u, &v])?`, `Dot::with_axes(2, 2)` |
//! | `Reshape((-1, 2))` | `Reshape::new(&[-1, 2])`; refuses a masked input, like `Flatten` (tf_keras drops the mask silently) |
//! | `keras_hub.layers.PositionEmbedding(sequence_length=L)` | `PositionEmbedding::new(L)` |
//! | `layer(x, start_index=s)` (KerasHub position layers) | `layer.call_with_start_index(&x, s)?` |
//! | `SinePositionEncoding(max_wavelength=w)` | `SinePositionEncoding::new().max_wavelength(w)` |
//! | `RotaryEmbedding(scaling_factor=f, rope_type="dynamic")` | `RotaryEmbedding::new().scaling_factor(f).rope_type(RopeType::Dynamic)` |
//! | `TokenAndPositionEmbedding(V, L, D, mask_zero=True)` | `TokenAndPositionEmbedding::new(V, L, D).mask_zero(true)` |
//! | `TokenAndPositionEmbedding(V, L, D, tie_weights=False)`; `tape.token_embedding(h, reverse=True)` | `TokenAndPositionEmbedding::new(V, L, D).tie_weights(false)`; `graph.call_with(tape, &[h], CallArgs::default().reverse(true))?` |
//! | `SparseCategoricalCrossentropy(from_logits=True)` (and the binary and categorical ones) | `Loss::SparseCategoricalCrossentropyFromLogits` (`BinaryCrossentropyFromLogits`, `CategoricalCrossentropyFromLogits`) |
//! | Keras 3 `layer.quantize("int8")` / `"int4"` | `layer.quantize("int8")?` / `"int4"` (built layer; `quantize_with(QuantizationMode::Int4 { block_size: None })` per channel) |
//! | Keras 3 `Embedding(..., dtype="float16")` | `Embedding::new(v, d).dtype(TableDType::Float16)` |
//! | PyTorch `nn.EmbeddingBag(n, d, mode="sum", padding_idx=0)` | `EmbeddingBag::new(n, d).mode(BagMode::Sum).padding_idx(0)` |
//! | PyTorch `bag(input, offsets, per_sample_weights=w)` | `bag.call_with_offsets(&ids, &offsets, Some(w.view()))?` |
//! | PyTorch `torch.optim.SparseAdam(params)` | `SparseAdam::default().into()` |
//! | keras-rs `EmbedReduce(n, d, combiner="sqrtn")`, `layer(ids, weights=w)` | `EmbedReduce::new(n, d).combiner(Combiner::SqrtN)`, `layer.call_with_weights(&ids, w)?` |
//! | `StringLookup(vocabulary=..., mask_token="")`, `layer.adapt(data)` | `StringLookup::builder().mask_token("").vocabulary(..).build()?`, `layer.adapt(iter)?` |
//! | `Hashing(num_bins=3, salt=7)` | `Hashing::new(3)?.salt([7, 7])` |
//! | `TextVectorization(output_sequence_length=4)` | `TextVectorization::builder().output_sequence_length(4).build()?` |
//! | `TextVectorization(output_mode="tf_idf")` | `TextVectorization::builder().output_mode(OutputMode::TfIdf).build()?` |
//! | `keras.Input(shape=(), dtype=tf.string)` | `Input::new(&[]).dtype(DType::String)` (a `Sequential` records a string input from its first call) |
//! | `model.fit(texts, y)` | `model.fit(Tensor::from(texts), y, ..)` |
//! | `model.predict(texts)` returning int64 ids (a `TextVectorization` output) | `model.predict_tensor(texts)?` (`Model::predict_tensors`); `predict` returns float32 outputs only |
//! | `model.predict(texts)` over several batches whose `TextVectorization` ids have different widths (no `output_sequence_length`): a `tf.RaggedTensor` | one dense tensor, each batch padded at the end with 0 (`""` for strings, a `false` mask) to the widest: Keras' result after `.to_tensor()` |
//! | `np.load("codes.npy", mmap_mode="r")` int8 codes with their scales | `Embedding::from_mapped_quantized(npy::map_npy_codes(..)?, npy::read_npy_scales(.., rows)?, QuantizationMode::Int8)?` |
//! | the same for int4 codes (per channel or grouped), the other variables in memory | `Embedding::from_mapped_quantized_with(npy::map_npy_codes(..)?, output_dim, mode, layer.get_weights()[1..].to_vec())?` |
//! | saving a quantized layer's `embeddings` / `embeddings_scale` as `.npy` | `npy::write_quantized_npy(&layer, codes, scales)?` |
//! | `layer.load_assets(dir)` (an adapted vocabulary) | `layer.load_vocabulary(dir.join("vocabulary.txt"))?` |
//! | Keras 3 `ReversibleEmbedding(V, D, tie_weights=False, logit_soft_cap=c)` | `ReversibleEmbedding::new(V, D).tie_weights(false).logit_soft_cap(Some(c))` |
//! | `emb(x, reverse=True)` | `graph.call_with(emb, &[x], CallArgs::default().reverse(true))?`, or `layer.reverse_call(&x)?` |
//! | PyTorch `nn.Embedding(V, D, padding_idx=p, max_norm=m, norm_type=q, scale_grad_by_freq=True)` | `Embedding::new(V, D).padding_idx(p).max_norm(m).norm_type(q).scale_grad_by_freq(true)` |
//! | PyTorch `nn.Embedding.from_pretrained(t, freeze=True)` | `Embedding::from_pretrained(t, true)?` (built at once: `embeddings()` is there) |
//! | a Hugging Face model's token table | `io::safetensors::read_token_embeddings("model.safetensors")?` (finds `model.embed_tokens.weight`, `embeddings.word_embeddings.weight`, `wte.weight`, ...) |
//! | Keras 3 `layer.enable_lora(4)`, `Embedding(..., lora_rank=4)` | `layer.enable_lora(4)?`, `Embedding::new(v, d).with_lora(4, None)` |
//! | Keras 3 `layer.save_own_variables(store)` with LoRA (the merged table) | `layer.save_own_variables()` |
//! | Keras 3 `layer.quantize("int8"); layer.enable_lora(4)` | `layer.quantize("int8")?; layer.enable_lora(4)?;` (`get_weights` in Keras' order: `lora_embeddings_a`, `lora_embeddings_b`, `embeddings`, `embeddings_scale`) |
//! | `SGD(0.05, momentum=0.9, nesterov=True)` | `SGD::new(0.05).momentum(0.9).nesterov(true)` |
//! | `RMSprop(learning_rate=0.01, rho=0.8)` | `RMSprop::default().learning_rate(0.01).rho(0.8)` |
//! | `Adam(amsgrad=True)`, TF Addons' `LazyAdam()` | `Adam::default().amsgrad(true)`, `Adam::default().lazy(true)` |
//! | `Adagrad(learning_rate=0.1)` | `Adagrad::default().learning_rate(0.1)` |
//! | `compile(optimizer, "binary_crossentropy")` | `compile(optimizer, Loss::BinaryCrossentropy)` or `"binary_crossentropy".parse()?` |
//! | `fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)` | `fit(x, y, FitOptions::default().epochs(3).batch_size(8).shuffle(false).verbose(false))?` |
//! | `fit(..., validation_split=0.2)` / `validation_data=(vx, vy)` | `.validation_split(0.2)` / `.validation_data(vx, vy)` |
//! | `validation_data=([x1, x2], [y1, y2])` (several inputs or outputs) | `.validation_data_of(vec![x1, x2], vec![y1, y2])` |
//! | `callbacks=[ReduceLROnPlateau(patience=2), TerminateOnNaN(), CSVLogger("log.csv")]` | `&mut [&mut ReduceLROnPlateau::new("val_loss").patience(2), &mut TerminateOnNaN::new(), &mut CsvLogger::new("log.csv")]` (`ndkeras::model::callbacks`) |
//! | `model.get_weights()` / `model.set_weights(ws)` | `model.get_weights()` / `model.set_weights(ws)?` (all or nothing) |
//! | `history.history["loss"]`, `["val_loss"]` | `history.loss`, `history.val_loss` |
//! | `evaluate(x, y)`, `train_on_batch(x, y)` | `evaluate(x, y)?`, `train_on_batch(x, y)?` |
//! | `embeddings_constraint=MaxNorm(1.0)` | `.embeddings_constraint(Constraint::MaxNorm { max_value: 1.0, axis: 0 })` |
//! | `MaxNorm(1.0, axis=[0, 1])`, `UnitNorm(axis=-1)` | `Constraint::max_norm(1.0).with_axes(Axes::list(&[0, 1])?)`, `Constraint::unit_norm().with_axes(Axes::single(-1))` ([`Axes`](crate::constraints::Axes); norms over all listed axes at once, as in Keras) |
//! | `Embedding(3, 2, trainable=False, embeddings_regularizer=l2(0.1))` | `Embedding::new(3, 2).trainable(false).embeddings_regularizer(Regularizer::L2(0.1))`: the penalty is in the loss, as in Keras; the table is not updated |
//! | `embeddings_regularizer=l2(0.01)` | `.embeddings_regularizer(Regularizer::L2(0.01))` |
//!
//! ## Weights and files
//!
//! | Keras / Python | ndkeras |
//! |---|---|
//! | `layer(np.array(ids, dtype="int8"))` (also `int16`, `uint16`, `uint64`) | `layer.apply(&Tensor::from(ids))?` with `ids` an `Array` of `i8` (`i16`, `u16`, `u64`) |
//! | `np.save("t.npy", layer.get_weights()[0])` | `npy::write_npy("t.npy", &layer.get_weights()[0].view())?` |
//! | `Embedding(..., weights=[np.load("t.npy")])` | `Embedding::from_table(npy::read_npy_table("t.npy")?)` |
//! | `x_train = np.load("x_train.npy")` (integer ids) | `let x_train = npy::read_npy_ids("x_train.npy")?;` (a `Tensor` of the file's integer type, exact) |
//! | a GloVe / word2vec file | `glove::read_glove(path)?`, `word2vec::read_word2vec_text(path)?` / `read_word2vec_binary(path)?`; `read_glove_with(path, options)` for other [`ReadOptions`](crate::io::word_vectors::ReadOptions) |
//! | `np.load("t.npy", mmap_mode="r")` | `Embedding::from_mapped(npy::map_npy("t.npy")?)?` |
//! | `model.save_weights(...)` / `load_weights(...)` | `model.save_weights("m.npz")?` / `model.load_weights("m.npz")?` (`.npz`, Keras names; loaded by layer order, as Keras 2) |
//! | `model.load_weights(p, by_name=True, skip_mismatch=True)` | `model.load_weights_with(p, LoadOptions::default().by_name(true).skip_mismatch(true))?` |
//! | `safetensors.numpy.load_file(p)["embed.weight"]` | `safetensors::read_tensor(p, "embed.weight")?` |
//! | `StringLookup(vocabulary=..., mask_token="")` | `Vocabulary::new(tokens, true)?` |
//! | `layer.get_config()`, `Embedding.from_config(c)` | `layer.get_config()` (trait `KerasConfig`, in the prelude), `Embedding::from_config(&c)?` |
//! | `model.to_json()`, `model_from_json(s)` | `model.to_json()`, `Sequential::from_json(&s)?` |
//!
//! ## Where ndkeras differs on purpose
//!
//! - **Out-of-range and negative ids** are an [`Error::IndexOutOfRange`](crate::Error) naming
//!   the layer, the id, its position and the valid range, on every platform. (TensorFlow raises
//!   on a CPU but returns zeros on a GPU; JAX returns NaN rows and wraps negative ids.)
//! - **Float ids** must be whole numbers; Keras truncates `1.5` to `1` silently.
//! - **Integer ids stay exact** through a `Sequential`: Keras 2 gives a model built from
//!   `input_length` a float32 input layer, which rounds ids above 2^24.
//! - **`Constant` with an array** must match the table's shape; Keras 2 reshapes an array of the
//!   same size and another shape.
//! - **Tables hold finite float32 values**: NaN, infinities and values beyond float32's range
//!   are refused by `set_weights`, by `weights` at build, by every file reader (naming the
//!   position and the value) and by every writer; initializer parameters that would overflow
//!   float32 (`RandomNormal(stddev=1e300)`) are refused too. Keras accepts them all.
//! - **A failed call changes nothing**: the input and the initial weights (count, shapes,
//!   values) are checked before the layer is built, and a build is all or nothing, so a first
//!   call can fail without leaving a half-built layer (Keras would keep the randomly
//!   initialised table and drop the `weights`). A `Sequential` built on its first input builds
//!   all its layers or none.
//! - **`weights` replace the initializer instead of overwriting it**: Keras fills the table with
//!   the initializer and then copies `weights` over it; ndkeras never runs the initializer
//!   (it only checks it against the shape, so Keras' errors stay), so a 2M x 64 table from
//!   `weights` costs one copy. The result is the same.
//! - **`try_get_weights`** copies the weights with fallible allocations (`get_weights`, like
//!   any Rust copy, aborts when a copy does not fit); `weight_views` reads them in place.
//! - **`Orthogonal` refuses shapes whose QR factorisation would take minutes to hours**:
//!   `rows x cols x min(rows, cols)` above 2^36 (4096 x 4096, or 1M x 256, each about 20 s
//!   here). Keras factorises any shape and warns of slowness above 2000 x 2000; ndkeras
//!   returns an error naming the shape, so a short config cannot occupy a process for hours.
//! - **`Embedding::new` cannot fail**, so a zero dimension is reported when the layer is added
//!   or first called; `Embedding::try_new` reports it at once.
//! - **`compile` takes an `Optimizer` and a `Loss`, not strings**: write
//!   `compile("rmsprop".parse()?, "mse".parse()?)` and `compile(Adam::default().into(), ..)`.
//!   Rust converts nothing implicitly, and a `compile` generic enough to take `"rmsprop"` or
//!   `Adam::default()` as they are would leave `"rmsprop".parse()` and `.into()` without a
//!   type to produce, so the forms above would stop compiling. Layer builders, which cannot
//!   clash that way, take Keras' names directly: `Dense::new(1).activation("sigmoid")`.
//! - **`summary()`** returns the table as a `String` instead of printing it.
//! - **`fit` checks every id before the first step**, so bad data never trains half an epoch;
//!   a loss that becomes NaN or infinite stops training with an error naming the epoch and
//!   batch, with the weights of the last good step (Keras goes on training with NaN). With
//!   the `TerminateOnNaN` callback, `fit` ends there without an error and returns the
//!   history, as Keras does; the step computed from the NaN loss is not applied either
//!   (Keras applies it, which usually fills the weights with NaN).
//! - **KerasHub's position layers check their lengths**: a sequence longer than
//!   `sequence_length`, or `start_index + length` past it, is an error naming the layer and
//!   both lengths (JAX clamps the start and returns other rows); zero sizes, a non-positive
//!   or non-finite `max_wavelength` / `scaling_factor` and an unknown `rope_type` are refused
//!   (KerasHub applies no scaling for an unknown one); `RotaryEmbedding` refuses a masked
//!   input (Keras 3 drops the mask with a warning). Not there yet: the `positions` argument
//!   and YaRN scaling. `TokenAndPositionEmbedding` takes its token embedding's reverse call
//!   itself (`graph.call_with(tape, &[h], CallArgs::default().reverse(true))` for KerasHub's
//!   `tape.token_embedding(h, reverse=True)`); a model saved that way records `reverse` on
//!   that layer's node, which Keras cannot load.
//! - **Quantized and half-precision tables refuse to train without LoRA**: `fit` names the
//!   layer and says to adapt it with LoRA (`enable_lora`) or freeze it (`trainable(false)`);
//!   Keras skips it silently. `save_weights` writes a bfloat16 table as float32 (NumPy has
//!   no bfloat16 dtype; Keras' `set_weights` puts the values back exactly). Only float32
//!   tables can be quantized. `set_weights` checks that int8 codes are whole numbers in -128..=127 and that
//!   scales dequantise to finite values. `quantize` refuses, naming the row, a table whose
//!   codes would dequantise past `f32::MAX` (int8: a row above 127/128 of it; per-channel
//!   int4: above 7/8; grouped int4: a group whose range overflows); Keras quantizes such a
//!   row, whose values may then decode to infinities (depending on how the backend divides).
//! - **Memory-mapped quantized tables** have no Keras counterpart (Keras loads every
//!   variable into memory). `Embedding::from_mapped_quantized_with`
//!   maps int8 or packed int4 codes and takes the `output_dim` (a packed row cannot tell an
//!   odd width from an even one) and the other variables, checked as `set_weights` checks
//!   them.
//! - **`EmbeddingBag`** refuses decreasing offsets and a last offset other than the number of
//!   ids with `include_last_offset` (PyTorch fails in its kernel, or sums and divides over
//!   different ranges); max mode has a row-sparse gradient too (PyTorch refuses
//!   `sparse=True` with max). `EmbedReduce` leaves masked positions out of the reduction and
//!   its divisor (keras-rs averages the padding rows in).
//! - **Masks in a functional graph** are known only when the model runs: a merge layer
//!   whose masked and unmasked inputs cannot be combined (`Concatenate(axis=-2)` of a
//!   masked and an unmasked sequence) is refused at the first `predict` or `fit`, naming
//!   the layer, where tf_keras raises when the layer is called on the symbolic tensors.
//! - **Layer names with a `/`** are refused when the layer is added to a model (as Keras 3
//!   refuses them; tf_keras 2 accepts them): weights files key each weight as
//!   `layer/weight`.
//! - **word2vec files whose header undercounts** (`rows dims` smaller than the rows that
//!   follow) are an error naming the file; gensim's `load_word2vec_format` reads the
//!   counted rows and silently drops the rest. A header that overcounts is an error in both.
//! - **Lookups**: a `max_tokens` below the number of special ids is an error (Keras accepts
//!   it and drops tokens through a negative slice); an `IntegerLookup` vocabulary file is
//!   read as Python's `int()` reads each line (whitespace, a sign, `1_000`) except for
//!   non-ASCII digits such as `٣`, which are an error naming the line (Keras never writes
//!   them); an AUC label outside [0, 1] is an error
//!   (Keras counts any non-zero label as positive).
//! - **`ReversibleEmbedding`** refuses a `logit_soft_cap` that is not positive and finite
//!   (Keras divides by it) and checks the reverse call's input (float32, last axis
//!   `output_dim`); its tables are float32 only (`reverse_dtype` must be null).
//! - **PyTorch's `max_norm`** rescales the rows a lookup reads in the table on `apply`, `fit`
//!   and `evaluate`, as PyTorch does; `call` and `predict` (which take `&self`) output the
//!   same rescaled rows without writing them. The norm is summed in float64 (PyTorch: float32).
//! - **LoRA** is refused on int8/int4 tables and with `max_norm`; a rank of 0 is an error
//!   (Keras would divide by zero). `save_weights` writes the merged table as Keras 3 does
//!   (`Layer::saved_weights`); `get_weights` gives the three variables, as Keras'
//!   `layer.get_weights()`.
//! - **Callbacks see `lr` in the logs whatever their order**: Keras' learning-rate callbacks
//!   add it in their own `on_epoch_end`, so a `CSVLogger` listed before them does not record
//!   it; ndkeras adds it before any callback runs.
//! - **The callbacks keep Keras' different "auto" rules**: `ReduceLROnPlateau` and
//!   `ModelCheckpoint` maximise a monitor whose name contains `acc` (so `val_auc` is
//!   minimised, as in Keras: set `Mode::Max`), `EarlyStopping` one ending in `acc`,
//!   `accuracy` or `auc`. A monitor missing from the logs is an error naming the logs there
//!   are (Keras warns and skips).
//! - **Empty data is an error everywhere**: `fit`, `evaluate` and `train_on_batch` on zero
//!   samples (and an empty `validation_data`) return an error naming the call and the input,
//!   and change nothing. Keras 2 raises for `fit` and `evaluate` but returns a loss of 0 from
//!   `train_on_batch`.
//! - **`Flatten` refuses a masked input** ([`Error::MaskNotSupported`](crate::Error)), e.g.
//!   after `Embedding::new(..).mask_zero(true)`. tf_keras 2 drops the mask silently and
//!   flattens the padding in with the rest; ndkeras makes you choose (pool with the mask
//!   first, or turn `mask_zero` off).
//! - **A cross-entropy after the "other" activation** (a sigmoid output with
//!   `categorical_crossentropy`, a softmax output with `binary_crossentropy`) is computed from
//!   the probabilities, as Keras 3 does on JAX, PyTorch and NumPy. tf_keras reuses the cached
//!   logits of any sigmoid or softmax, which gives the loss of an output the model does not
//!   produce (see [`losses`](crate::losses)). Matching pairs (sigmoid + binary, softmax +
//!   categorical) use the logits in both.
//! - **Sparse updates**: an embedding's step costs what the batch touches. Where Keras also
//!   changes rows a step does not touch (RMSprop's velocity decays, momentum keeps moving a
//!   row), ndkeras applies the same change in closed form when the row is next touched or
//!   read, giving Keras' weights to float tolerance. Keras' Adam moves every row at every step
//!   and has no closed form, so `Adam` is dense by default (Keras parity) and
//!   `Adam::default().lazy(true)` updates only the touched rows (TF Addons' `LazyAdam`).
//!   A regularizer or constraint reaches every row, so such a step is dense, as in Keras.
