# nn unit: sources, tests, benches
