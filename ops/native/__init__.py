"""Native C++ CPU backend of the ops (built on first use with torch.utils.cpp_extension + ninja)."""
