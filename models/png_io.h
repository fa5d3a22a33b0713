// Forwarding header: this file moved to models/data/png_io.h. Include that path (or latent/latent.h);
// this one keeps the old include path working for now.
#pragma once
#include "data/png_io.h"
