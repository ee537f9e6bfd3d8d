"""Ship the built-in rule packs and fixtures inside the wheel (see pyproject.toml)."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA = {"rules": "guard/_packs", "fixtures": "guard/_fixtures"}


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        for source, target in DATA.items():
            if Path(source).is_dir():
                self.copy_tree(source, str(Path(self.build_lib) / target))


setup(cmdclass={"build_py": BuildWithData})
