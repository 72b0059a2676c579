package dev.hybridinference.localgpu;

import dev.hybridinference.localgpu.internal.NativeLoader;
import dev.hybridinference.localgpu.internal.NativeModel;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Whether the in-process engine can run here. The native library is loaded once, on first use; when it
 * cannot be (no build for this platform, the module built without a C++ toolchain, turned off with
 * {@code -Dhybridinference.native.disable=true}), the runtime is unavailable and says why, and the
 * {@code local-gpu} provider reports itself unavailable instead of failing the application.
 *
 * <p>The engine computes on the CPU, or on a CUDA device when the library was built with its CUDA backend
 * (the build finds {@code nvcc}) and the machine has a driver and a device: {@link #cudaDevices()} lists
 * them, and {@link #cudaUnavailableReason()} says why there are none. The library loads on a machine
 * without a driver; it then has no CUDA devices and the CPU backend works as ever.
 *
 * <p>Thread-safe.
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

    /**
     * The CUDA devices usable here, with their memory as of now; empty (never an error) when the runtime is
     * unavailable, the library has no CUDA backend, or the machine no driver or device. Asking a device for
     * its free memory starts the CUDA runtime's context on it (a few hundred MiB of device memory, kept for
     * the life of the process).
     */
    public static List<CudaDevice> cudaDevices() {
        if (!isAvailable()) {
            return List.of();
        }
        int n = NativeModel.cudaDeviceCount();
        List<CudaDevice> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            long[] mem = NativeModel.cudaDeviceMemory(i);
            out.add(new CudaDevice(i, NativeModel.cudaDeviceName(i), mem[0], mem[1]));
        }
        return List.copyOf(out);
    }

    /**
     * Why {@link #cudaDevices()} is empty ({@code this build of the native library has no CUDA backend ...},
     * {@code no CUDA driver ...}, {@code no CUDA device ...}), or empty when there is a device. Tests that need
     * a GPU skip with this reason.
     */
    public static Optional<String> cudaUnavailableReason() {
        Throwable cause = NativeLoader.unavailabilityCause();
        if (cause != null) {
            return Optional.of("the local runtime is unavailable: " + cause.getMessage());
        }
        String reason = NativeModel.cudaUnavailableReason();
        return reason.isEmpty() ? Optional.empty() : Optional.of(reason);
    }
}
