// libsystemc.so is linked with BIND_NOW and refers to sc_main, so every binary or module that
// links it needs one. Test binaries and the Python module, which have their own main or none,
// link this stub; it is never called. Hidden visibility would not satisfy the loader.
extern "C" __attribute__((visibility("default"))) int sc_main(int, char**) { return 0; }
