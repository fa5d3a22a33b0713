// Forwarding header: this file moved to models/ae/gmm.h. Include that path (or latent/latent.h);
// this one keeps the old include path working for now.
#pragma once
#include "ae/gmm.h"
