# fuzz fragment
