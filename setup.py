"""Build step for the one compiled module, ``monitorapp.feed._speedups`` (the decoder's fast path).

It is optional: where no C compiler or Python headers are found the install goes on without it
and the pure-Python decoder gives the same results, more slowly. Everything else about the
package is declared in pyproject.toml.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("monitorapp.feed._speedups", ["monitorapp/feed/_speedups.c"], optional=True,
                             extra_compile_args=["-O2"])])
