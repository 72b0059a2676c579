package dev.hybridinference.localgpu;

/**
 * A CUDA device the local runtime sees: its ordinal (as {@code device: cuda:N} names it), name and memory
 * when it was asked ({@link LocalRuntime#cudaDevices()}).
 *
 * @param index the device ordinal
 * @param name the device's name, as the driver reports it
 * @param totalBytes the device's memory
 * @param freeBytes the memory free when the runtime was asked
 */
public record CudaDevice(int index, String name, long totalBytes, long freeBytes) {
    /** How receipts and {@code info()} name the device: {@code cuda:0 NVIDIA H100 80GB HBM3}. */
    public String label() {
        return "cuda:" + index + " " + name;
    }
}
