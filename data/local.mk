# data unit: sources, tests, benches
