// Forwarding header: this file moved to models/ae/vae_variants.h. Include that path (or latent/latent.h);
// this one keeps the old include path working for now.
#pragma once
#include "ae/vae_variants.h"
