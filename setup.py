"""Which files go into the package; everything else about it is in pyproject.toml.

The default mapping files live at the top of the repository, in ``mappings/``, where people
read and edit them. A wheel carries them as the data package ``ingest.bundled_mappings``
(``package_dir`` points that name at ``mappings/``), so an installed copy finds them next to
its code (``ingest.mapping.directory.default_mapping_dir``). An editable install reads the
checkout's ``mappings/`` itself, so edits there take effect at once.

pyproject.toml cannot say this: its package discovery looks for packages only inside their
own folders, so the mapped package would need the whole package list written out by hand.
Here both lists are discovered.
"""

from setuptools import find_namespace_packages, setup

MAPPINGS_PACKAGE = "ingest.bundled_mappings"
MAPPINGS_FOLDER = "mappings"

code_packages = find_namespace_packages(include=["ingest", "ingest.*"], exclude=["*.__pycache__"])
mapping_packages = [
    MAPPINGS_PACKAGE,
    *(f"{MAPPINGS_PACKAGE}.{name}" for name in find_namespace_packages(where=MAPPINGS_FOLDER)),
]

setup(
    packages=[*code_packages, *mapping_packages],
    package_dir={MAPPINGS_PACKAGE: MAPPINGS_FOLDER},
    package_data={
        "ingest": ["py.typed"],
        "ingest.feeds": ["*.sql"],
        "ingest.simulate.data": ["*.json"],
        # mapping files, lookup tables (.json or .toml) and the folder's README
        **{name: ["*.toml", "*.json", "*.md"] for name in mapping_packages},
    },
)
