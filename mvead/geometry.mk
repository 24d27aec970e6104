# geometry fragment
