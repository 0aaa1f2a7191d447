"""Attacks on oktaduck, each tried against the real parts."""
