// doctest's main for tinycnn_tests (all other tests/test_*.cpp are translation units of it).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
