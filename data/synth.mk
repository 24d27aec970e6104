# synth fragment: the built-in synthetic multi-view dataset (data/synth.h)
libmvead_la_SOURCES += data/synth.c data/synth_render.c data/synth.h
nobase_pkginclude_HEADERS += data/synth.h
