"""Sample data that ships or installs offline, for the demo, benchmarks and tests: real photos of people,
SYNTHETIC RGB-D scenes with real CAD meshes, SYNTHETIC radar frames driven by real motion capture."""
