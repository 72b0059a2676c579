package dev.hybridinference.localgpu.internal;

/**
 * An error raised by the native engine (a bad model file, a position past the context, a device out of
 * memory or failed). {@link #kind()} tells the causes apart that callers map differently. Internal.
 */
public final class NativeEngineException extends RuntimeException {
    /** What went wrong, as far as a caller needs to know. */
    public enum Kind {
        /** The input or the model file: a bad token, a position past the context, a malformed tensor. */
        INPUT,
        /** The device has not the memory asked for: a smaller context or fewer sessions may fit. */
        DEVICE_MEMORY,
        /** The device failed (a kernel launch, a lost device): it will not compute again. */
        DEVICE_FAILED
    }

    private final Kind kind;

    /** Creates an {@link Kind#INPUT} exception. */
    public NativeEngineException(String message) {
        this(message, Kind.INPUT);
    }

    /** Creates the exception. */
    public NativeEngineException(String message, Kind kind) {
        super(message);
        this.kind = kind;
    }

    /** Called from native code: {@code kind} 0 input, 1 device memory, 2 device failed. */
    NativeEngineException(String message, int kind) {
        this(message, kind == 1 ? Kind.DEVICE_MEMORY : kind == 2 ? Kind.DEVICE_FAILED : Kind.INPUT);
    }

    /** What went wrong. */
    public Kind kind() {
        return kind;
    }
}
