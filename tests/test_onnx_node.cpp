// Placeholder suite; being written.
#include <doctest/doctest.h>
