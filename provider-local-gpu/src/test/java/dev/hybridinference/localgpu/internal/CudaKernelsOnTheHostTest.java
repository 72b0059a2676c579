package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The CUDA backend's kernels compiled for the host against an emulation of the CUDA runtime (each thread
 * of a block a fiber, {@code __syncthreads} and the warp shuffles barriers among them; see {@code
 * src/test/native/cuda-host}) and run against references in double precision: every weight type's matrix
 * product with each epilogue, normed or not, one row and batches, float and integer (precision fast), with
 * the launch settings that change the grids; RoPE with the cache store in both pairings and in the Q/K/V
 * product; attention over one slice up to 32 joined; the embedding lookup; SwiGLU. Each check runs twice:
 * every thread in turn, and one warp of each block held back while the others run ahead, which turns a
 * missing barrier into a wrong result. So the kernels' indexing and synchronization are checked on every
 * machine; their speed, and what the emulation cannot model (the memory model, inline PTX), need a GPU.
 */
class CudaKernelsOnTheHostTest {
    @Test
    void theKernelsComputeWhatTheReferencesCompute() throws Exception {
        Path exe = Path.of(
                System.getProperty("hybridinference.nativeBuild", "target/native-build"), "cuda_kernels_on_host");
        assumeTrue(
                Files.isExecutable(exe),
                "the CUDA kernels were not built for the host: the native build was skipped, or the compiler has no"
                        + " _Float16");
        Process p = new ProcessBuilder(exe.toString()).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(5, TimeUnit.MINUTES)).isTrue();
        assertThat(p.exitValue()).as(output).isZero();
        assertThat(output).containsPattern("\\d{3,} checks, 0 failed");
    }
}
