// Forwarding header: this file moved to models/io/json.h. Include that path (or latent/latent.h);
// this one keeps the old include path working for now.
#pragma once
#include "io/json.h"
