package dev.hybridinference.localgpu.internal;

/** An error raised by the native engine (a bad model file, a position past the context...). Internal. */
public final class NativeEngineException extends RuntimeException {
    /** Creates the exception; called from native code. */
    public NativeEngineException(String message) {
        super(message);
    }
}
