"""The compiled core, stocksent._native (C++17, the plain CPython API): everything else is in pyproject.toml.

Optional: where no C++ compiler is available the build warns and the package installs without it,
and stocksent runs its reference path (stocksent/compiled.py). Instruction sets are chosen at run
time (csrc/cpu.cpp), never at build time, so a wheel built here runs on any x86-64 or arm64 CPU.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCES = [
    "csrc/module.cpp",
    "csrc/cpu.cpp",
    "csrc/normalise.cpp",
    "csrc/lstm.cpp",
    "csrc/kernels_generic.cpp",
    "csrc/kernels_avx2.cpp",
    "csrc/kernels_avx512.cpp",
    "csrc/kernels_amx.cpp",
]
HEADERS = [
    "csrc/activations.h",
    "csrc/avx512_math.inc",
    "csrc/cpu.h",
    "csrc/lstm.h",
    "csrc/lstm_loop.inc",
    "csrc/normalise.h",
    "csrc/target_end.inc",
]


class BuildExt(build_ext):
    """Flags by compiler: optimised, C++17, no -march (kernels pick their instruction sets themselves)."""

    def build_extensions(self) -> None:
        msvc = self.compiler.compiler_type == "msvc"
        for ext in self.extensions:
            ext.extra_compile_args = ["/O2", "/std:c++17"] if msvc else ["-O3", "-std=c++17", "-fvisibility=hidden"]
        super().build_extensions()


setup(
    ext_modules=[Extension("stocksent._native", SOURCES, depends=HEADERS, language="c++", optional=True)],
    cmdclass={"build_ext": BuildExt},
)
