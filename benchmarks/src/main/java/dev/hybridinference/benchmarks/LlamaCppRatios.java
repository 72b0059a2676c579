package dev.hybridinference.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The local runtime's speed over llama.cpp's on the same files: reads the {@code local-tps.csv} that
 * {@link LocalTokensPerSecond} writes with {@code --save} and the JSON lines llama-bench prints with
 * {@code -o jsonl} (as {@code benchmarks/llama-cpp-baseline.sh} saves them), and prints, per model, mode
 * and thread count, prefill and decode tokens per second of each and their ratio (ours over llama.cpp).
 */
public final class LlamaCppRatios {
    private LlamaCppRatios() {}

    /**
     * Prints the ratio table.
     *
     * @param args the harness's {@code local-tps.csv} and llama-bench's JSON lines file
     */
    public static void main(String[] args) throws IOException {
        if (args.length != 2) {
            throw new IllegalArgumentException("expected two arguments: local-tps.csv and llama-bench's .jsonl file");
        }
        // llama-bench: file name and thread count to {prefill t/s, decode t/s}.
        Map<String, double[]> theirs = new HashMap<>();
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(Path.of(args[1]))) {
            if (!line.startsWith("{")) {
                continue;
            }
            JsonNode n = json.readTree(line);
            String file =
                    Path.of(n.path("model_filename").asText()).getFileName().toString();
            String key = file + "/" + n.path("n_threads").asInt();
            double[] v = theirs.computeIfAbsent(key, k -> new double[] {Double.NaN, Double.NaN});
            if (n.path("n_gen").asInt() == 0) {
                v[0] = n.path("avg_ts").asDouble();
            } else if (n.path("n_prompt").asInt() == 0) {
                v[1] = n.path("avg_ts").asDouble();
            }
        }
        if (theirs.isEmpty()) {
            throw new IllegalArgumentException(args[1] + " holds no llama-bench JSON lines");
        }
        List<String> ours = Files.readAllLines(Path.of(args[0]));
        if (ours.isEmpty() || !ours.get(0).equals("model,file,mode,threads,prefill_tps,decode_tps")) {
            throw new IllegalArgumentException(
                    args[0] + ": expected the header model,file,mode,threads,prefill_tps,decode_tps");
        }
        System.out.printf(
                Locale.ROOT,
                "%-8s %-8s %7s | %13s %13s %7s | %13s %13s %7s%n",
                "type",
                "mode",
                "threads",
                "prefill ours",
                "llama.cpp",
                "ratio",
                "decode ours",
                "llama.cpp",
                "ratio");
        for (String row : ours.subList(1, ours.size())) {
            String[] f = row.split(",");
            if (f.length != 6) {
                throw new IllegalArgumentException(args[0] + ": expected 6 fields in row " + row);
            }
            double prefill = Double.parseDouble(f[4]);
            double decode = Double.parseDouble(f[5]);
            double[] t = theirs.getOrDefault(f[1] + "/" + f[3], new double[] {Double.NaN, Double.NaN});
            System.out.printf(
                    Locale.ROOT,
                    "%-8s %-8s %7s | %13.1f %13.1f %6.2fx | %13.1f %13.1f %6.2fx%n",
                    f[0],
                    f[2],
                    f[3],
                    prefill,
                    t[0],
                    prefill / t[0],
                    decode,
                    t[1],
                    decode / t[1]);
        }
    }
}
