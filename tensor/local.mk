# tensor unit: sources, tests, benches
libmvead_la_SOURCES += tensor/error.c
nobase_pkginclude_HEADERS += tensor/tensor.h tensor/error.h
