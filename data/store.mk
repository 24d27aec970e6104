# data/store: HDF5 I/O helpers and the feature cache
libmvead_la_SOURCES += data/h5io.c data/h5io.h data/cache.c data/cache.h
nobase_pkginclude_HEADERS += data/h5io.h data/cache.h
