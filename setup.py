"""Ship the fixtures (seed data) inside the wheel as guard/_fixtures (see pyproject.toml).

The provider packs and their templates are package data of guard.providers already.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA = {"fixtures": "guard/_fixtures"}


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        for source, target in DATA.items():
            if Path(source).is_dir():
                self.copy_tree(source, str(Path(self.build_lib) / target))


setup(cmdclass={"build_py": BuildWithData})
