# method fragment
