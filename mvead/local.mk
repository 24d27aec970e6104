# mvead unit: sources, tests, benches
mvead_mvead_SOURCES += mvead/main.c
