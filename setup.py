"""Builds the optional C extension ``ftdata._native`` (FT309's text statistics); everything
else is in pyproject.toml. Without a compiler the build goes on without it and ftdata runs
its pure-Python path, with the same output."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ftdata._native", ["ftdata/_native.c"], optional=True)])
