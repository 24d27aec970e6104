# bench unit: sources, tests, benches
