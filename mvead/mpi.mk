# mpi fragment
