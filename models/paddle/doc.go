// Package paddle reads and writes PaddlePaddle .pdparams checkpoints: the
// plain Python pickle (protocols 2–4) that paddle.save writes for a
// state_dict, a dict mapping each parameter name to a numpy.ndarray plus the
// "StructuredToParameterName@@" name table.
//
// The reader is a small pickle virtual machine with an allow-list of the few
// globals NumPy arrays need (numpy's _reconstruct, ndarray and dtype,
// _codecs.encode, collections.OrderedDict). It never executes pickled code:
// any other global is refused with an error that names it, and every length
// in the stream is checked against the bytes that remain, so a damaged or
// hostile file yields an error, never a panic or an outsized allocation.
//
// The writer emits the bytes that paddle.save (CPython's C pickler and NumPy's
// array reduction) produces for the same arrays, so files it writes load with
// paddle.load or pickle.load(f, encoding="latin1").
package paddle
