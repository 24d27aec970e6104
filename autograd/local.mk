# autograd unit: sources, tests, benches
