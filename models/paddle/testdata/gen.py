"""Writes the Python-made .pdparams files beside this script.

Run with Debian's interpreter, which has NumPy (make setup):
    /usr/bin/python3 models/paddle/testdata/gen.py
They are pickled as paddle.save does (pickle.dump of a dict of ndarrays plus
the StructuredToParameterName@@ table), with twists Paddle never writes but a
reader must survive: Fortran order, big-endian arrays, an OrderedDict, and the
UnpackBigParamInfor@@ slices paddle.save makes for arrays over 1 GiB.
"""
import collections
import os
import pickle

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))


def arrays():
    return {
        'backbone.conv.weight': (np.arange(54, dtype=np.float32).reshape(2, 3, 3, 3) - 20) / 8,
        'backbone.fortran': np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4)),
        'backbone.big_endian': np.array([1.5, -2.0, 3.25], dtype='>f4'),
        'backbone.f64': np.array([0.5, -1.0, 1e300]),
        'backbone.i64': np.array([1 << 40, -3]),
        'backbone.scalar': np.array(7.0, dtype=np.float32),
        'backbone.bool': np.array([True, False, True]),
        'backbone.f16': np.array([0.5, -2.0], dtype=np.float16),
    }


for proto, ordered in ((2, False), (3, True), (4, False)):
    d = arrays()
    names = {k: 'param_%d' % i for i, k in enumerate(d)}
    if ordered:
        d = collections.OrderedDict(d)
    d['StructuredToParameterName@@'] = names
    with open(os.path.join(here, 'python_p%d.pdparams' % proto), 'wb') as f:
        pickle.dump(d, f, protocol=proto)

w = np.arange(10, dtype=np.float32).reshape(2, 5)
flat = w.flatten()
d = {'a.weight': np.ones(2, np.float32), 'w@@.0': flat[:6], 'w@@.1': flat[6:]}
d['StructuredToParameterName@@'] = {'a.weight': 'linear_0.w_0', 'w': 'linear_1.w_0'}
d['UnpackBigParamInfor@@'] = {'w': {'OriginShape': w.shape, 'slices': ['w@@.0', 'w@@.1']}}
with open(os.path.join(here, 'python_unpack_p2.pdparams'), 'wb') as f:
    pickle.dump(d, f, protocol=2)
