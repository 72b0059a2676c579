package dev.hybridinference.core;

/** A client that can tell how loaded its provider is. Implementations answer without blocking. */
public interface LoadAware {
    /** The latest load figures. */
    LoadSnapshot load();
}
