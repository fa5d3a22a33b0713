# Sourced by the scripts that use latent as an installed library (install_consumer.sh,
# tutorial_test.sh, tools/api_docs.sh): `stage_install BUILD_DIR` installs the build into a fresh
# staging directory, removed on exit, and sets $stage, $libdir (where liblatent.so is) and
# PKG_CONFIG_PATH / PKG_CONFIG_SYSROOT_DIR so `pkg-config --cflags --libs latent` finds it.
stage_install() {
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  meson install -C "$1" --destdir "$stage" --no-rebuild --quiet
  local pc
  pc=$(find "$stage" -name latent.pc -print -quit)
  [ -n "$pc" ] || { echo "latent.pc was not installed"; exit 1; }
  export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$stage
  libdir=$(dirname "$(find "$stage" -name 'liblatent.so*' -print -quit)")
}
