package dev.hybridinference.localgpu.bench;

import dev.hybridinference.localgpu.LocalRuntime;
import dev.hybridinference.localgpu.internal.GgufWriter;
import dev.hybridinference.localgpu.internal.NativeModel;
import java.util.List;
import java.util.Locale;

/**
 * How fast one CUDA matrix product reads its weights when decoding (one input vector), alone and launched
 * back to back: the products of a 0.94B llama (FFN 5632 x 2048 both ways, the 32000-row output) and of an
 * 8B one (FFN 14336 x 4096), per weight type, in floats and in integers (precision fast), with and without
 * programmatic dependent launch and the weights prefetched into L2. Against the benchmark's decoding rate
 * it separates a kernel's own speed from what 110 launches a token cost. Not a test: {@code
 * src/test/gpu/run.sh} runs it on a GPU machine. Argument: types, default f16,q8_0,q4_k,q6_k.
 */
public final class CudaProductRates {
    private CudaProductRates() {}

    record Shape(String name, int rows, int cols) {}

    static final List<Shape> SHAPES = List.of(
            new Shape("1B gate/up", 5632, 2048),
            new Shape("1B down", 2048, 5632),
            new Shape("1B output", 32000, 2048),
            new Shape("8B gate/up", 14336, 4096),
            new Shape("8B down", 4096, 14336));

    /** Settings (NativeEngine.cudaProductRate's flags) and their names. */
    static final int[] FLAGS = {0, 4, 6, 1, 5, 7};

    static final String[] NAMES = {"float", "float+pdl", "float+pdl+prefetch", "int", "int+pdl", "int+pdl+prefetch"};

    public static void main(String[] args) {
        String[] types = (args.length > 0 ? args[0] : "f16,q8_0,q4_k,q6_k").split(",");
        if (LocalRuntime.cudaDevices().isEmpty()) {
            System.out.println(
                    "no CUDA device: " + LocalRuntime.cudaUnavailableReason().orElse("none seen"));
            return;
        }
        double peak = NativeModel.cudaPeakBandwidth(0);
        System.out.printf(
                "one product at a time, GB/s of weights (%% of the %.0f GB/s peak), 50 launches back to back%n", peak);
        StringBuilder head = new StringBuilder(String.format(Locale.ROOT, "%-6s %-12s %8s", "type", "matrix", "MB"));
        for (String n : NAMES) {
            head.append(String.format(Locale.ROOT, " %20s", n));
        }
        System.out.println(head);
        for (String t : types) {
            int type = CudaThroughput.typeOf(t.trim());
            boolean integer = type == GgufWriter.Q8_0 || type == GgufWriter.Q4_K || type == GgufWriter.Q6_K;
            for (Shape s : SHAPES) {
                long bytes = (long) s.cols() / GgufWriter.blockElems(type) * GgufWriter.blockBytes(type) * s.rows();
                StringBuilder line = new StringBuilder(
                        String.format(Locale.ROOT, "%-6s %-12s %8.1f", t.trim(), s.name(), bytes / 1e6));
                for (int i = 0; i < FLAGS.length; i++) {
                    if ((FLAGS[i] & 1) != 0 && !integer) {
                        line.append(String.format(Locale.ROOT, " %20s", "-"));
                        continue;
                    }
                    double rate = NativeModel.cudaProductRate(0, type, s.rows(), s.cols(), 50, FLAGS[i]);
                    line.append(String.format(Locale.ROOT, " %13.0f (%3.0f%%)", rate, 100 * rate / peak));
                }
                System.out.println(line);
            }
        }
    }
}
