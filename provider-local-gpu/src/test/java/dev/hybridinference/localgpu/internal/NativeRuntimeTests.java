package dev.hybridinference.localgpu.internal;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Test support for the classes that call the native runtime directly. */
final class NativeRuntimeTests {
    private NativeRuntimeTests() {}

    /** Skips the caller where the native runtime did not load, saying why. */
    static void assumeLoaded() {
        Throwable cause = NativeLoader.unavailabilityCause();
        assumeTrue(cause == null, () -> "native runtime unavailable: " + cause.getMessage());
    }
}
