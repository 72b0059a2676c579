package dev.hybridinference.localgpu;

import dev.hybridinference.localgpu.internal.NativeLoader;
import dev.hybridinference.localgpu.internal.NativeModel;
import java.util.Optional;

/**
 * Whether the in-process engine can run here. The native library is loaded once, on first use; when it
 * cannot be (no build for this platform, the module built without a C++ toolchain, turned off with
 * {@code -Dhybridinference.native.disable=true}), the runtime is unavailable and says why, and the
 * {@code local-gpu} provider reports itself unavailable instead of failing the application.
 */
public final class LocalRuntime {
    private LocalRuntime() {}

    /** Whether the native engine is loaded. */
    public static boolean isAvailable() {
        return NativeLoader.unavailabilityCause() == null;
    }

    /** Why the engine is not available, if it is not. */
    public static Optional<Throwable> unavailabilityCause() {
        return Optional.ofNullable(NativeLoader.unavailabilityCause());
    }

    /** Throws the reason when the engine is not available. */
    public static void ensureAvailability() {
        Throwable cause = NativeLoader.unavailabilityCause();
        if (cause != null) {
            throw new IllegalStateException("the local runtime is unavailable: " + cause.getMessage(), cause);
        }
    }

    /** The SIMD features the CPU kernels use here ({@code avx2 fma f16c} or {@code portable}). */
    public static String cpuFeatures() {
        ensureAvailability();
        return NativeModel.cpuFeatures();
    }
}
