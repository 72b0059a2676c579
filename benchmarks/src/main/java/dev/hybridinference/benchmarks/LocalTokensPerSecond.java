package dev.hybridinference.benchmarks;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatStream;
import dev.hybridinference.localgpu.LocalGpuClient;
import dev.hybridinference.localgpu.LocalRuntime;
import dev.hybridinference.localgpu.Precision;
import dev.hybridinference.localgpu.internal.GgufWriter;
import dev.hybridinference.localgpu.internal.NativeEngineException;
import dev.hybridinference.localgpu.internal.NativeModel;
import dev.hybridinference.localgpu.internal.RandomModels;
import dev.hybridinference.localgpu.internal.Sampler;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.ToIntFunction;
import java.util.function.UnaryOperator;

/**
 * Tokens per second of the local runtime, in two sections.
 *
 * <p><b>speed</b>: per weight type and thread count, prefill of 128 tokens in one call and greedy decode
 * of 64, the memory the model takes, and decode speed as a fraction of the memory-bandwidth bound (weight
 * bytes read per token against a read bandwidth measured in the same run).
 *
 * <p><b>streams</b>: the public client ({@link LocalGpuClient}) serving 1, 2, 4 and 8 concurrent streams,
 * each generating 64 tokens greedily after a short prompt: aggregate tokens per second, per-stream time per
 * token (the gaps between a stream's chunks, and each call's time over its tokens) at the median and 95th
 * percentile, and each figure's ratio to one stream; then the engine alone (decode steps of as many sessions
 * batched into one forward pass, without the client's threads), the same ratios at the step's median and mean.
 *
 * <p>Without model paths it generates random-weight llama models of dim 768, 12 layers, 12 heads, 4 KV
 * heads, FFN 2048, context 1024 and a 300-token vocabulary (76M parameters) in F32, F16, Q8_0, Q4_K, Q4_K_M
 * (see {@link #q4kmType}), Q6_K and, once {@link GgufWriter} writes them, Q4_0, Q4_1 and Q5_K. Arguments:
 *
 * <ul>
 *   <li>{@code --types=F32,Q8_0} the generated types to measure (default: all the writer supports);
 *   <li>{@code --threads=1,2} thread counts of the speed section;
 *   <li>{@code --repeat=N} loads and runs each model N times per row of the speed section and prints (and
 *       saves) the median speeds: single runs on a shared machine can be far off;
 *   <li>{@code --sections=speed,streams} the sections to run ({@code steps}: the streams section's engine
 *       steps alone, for profiling them);
 *   <li>{@code --modes=fast,exact} the precision modes of the speed section (default: both);
 *   <li>{@code --streams=1,2,4,8}, {@code --stream-types=F32,Q8_0}, {@code --stream-threads=N} (default:
 *       all cores) for the streams section;
 *   <li>{@code --save=DIR} writes the generated models to DIR and keeps them (so that llama.cpp's
 *       llama-bench can measure the same files, see {@code benchmarks/llama-cpp-baseline.sh}), with the
 *       speed section's figures in {@code DIR/local-tps.csv};
 *   <li>{@code --help} prints the options;
 *   <li>any other argument: a GGUF file to measure instead of the generated ones.
 * </ul>
 */
public final class LocalTokensPerSecond {
    private static final String USAGE = String.join(
            "\n",
            "LocalTokensPerSecond [options] [model.gguf ...]",
            "  --types=F32,Q8_0,...     generated types to measure (default: all)",
            "  --threads=1,2            thread counts of the speed section",
            "  --sections=speed,streams the sections to run (steps: the streams section's engine steps alone)",
            "  --modes=fast,exact       precision modes of the speed section (default: both)",
            "  --repeat=N               runs per row of the speed section, the median printed (default 1)",
            "  --streams=1,2,4,8        concurrent streams of the streams section",
            "  --stream-types=F32,Q8_0  generated types of the streams section",
            "  --stream-threads=N       engine threads of the streams section (default: all cores)",
            "  --save=DIR               keep the generated models and write DIR/local-tps.csv",
            "Without model files it generates random-weight 76M-parameter llama models.");
    private static final int PREFILL = 128;
    private static final int DECODE = 64;
    private static final long SEED = 42;
    private static final RandomModels.Shape SHAPE =
            new RandomModels.Shape("llama", 768, 12, 12, 4, 2048, 1024, 300, false);

    /**
     * The engine's precision modes, each measured in both sections: how to load a model in the mode, and
     * how to build a client in it. A mode the engine gains is one more entry here.
     */
    private static final List<Mode> MODES = List.of(
            new Mode("fast", (f, t) -> NativeModel.load(f, t, Precision.FAST), b -> b.precision(Precision.FAST)),
            new Mode("exact", (f, t) -> NativeModel.load(f, t, Precision.EXACT), b -> b.precision(Precision.EXACT)));

    /** Types whose weights every mode multiplies in floats. */
    private static final Set<String> FLOAT_TYPES = Set.of("F32", "F16");

    /** The generated types, in the order they are measured. */
    private static final List<String> ALL_TYPES =
            List.of("F32", "F16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q4_K_M", "Q5_K", "Q6_K");

    /** The files this run generated, so that each is written once per run. */
    private static final Set<Path> GENERATED = new HashSet<>();

    private LocalTokensPerSecond() {}

    /** A precision mode of the engine. */
    private record Mode(String name, Loader loader, UnaryOperator<LocalGpuClient.Builder> client) {}

    /** Loads a model in a mode. */
    @FunctionalInterface
    private interface Loader {
        NativeModel load(Path file, int threads);
    }

    /** A model to measure: its file, and the type name it is labelled with. */
    private record Model(String label, Path file) {}

    /** The parsed arguments. */
    private record Options(
            List<String> types,
            int[] threads,
            List<String> sections,
            List<String> modes,
            int[] streams,
            List<String> streamTypes,
            int streamThreads,
            int repeat,
            Path save,
            List<Path> files) {
        static Options parse(String[] args) {
            List<String> types = ALL_TYPES;
            int[] threads = {1, 2};
            List<String> sections = List.of("speed", "streams");
            List<String> modes = MODES.stream().map(Mode::name).toList();
            int[] streams = {1, 2, 4, 8};
            List<String> streamTypes = List.of("F32", "Q8_0");
            int streamThreads = Runtime.getRuntime().availableProcessors();
            int repeat = 1;
            Path save = null;
            List<Path> files = new ArrayList<>();
            for (String a : args) {
                int eq = a.indexOf('=');
                String key = a.startsWith("--") && eq > 0 ? a.substring(2, eq) : null;
                String value = key == null ? a : a.substring(eq + 1);
                if (key == null) {
                    files.add(Path.of(a));
                    continue;
                }
                switch (key) {
                    case "types" -> types = names(value, key);
                    case "threads" -> threads = ints(value, key);
                    case "sections" -> sections = List.of(value.split(","));
                    case "modes" -> modes = List.of(value.split(","));
                    case "streams" -> streams = ints(value, key);
                    case "stream-types" -> streamTypes = names(value, key);
                    case "stream-threads" -> streamThreads = ints(value, key)[0];
                    case "repeat" -> repeat = ints(value, key)[0];
                    case "save" -> save = Path.of(value);
                    default ->
                        throw new IllegalArgumentException("unknown option --" + key
                                + "; expected --types, --threads, --sections, --modes, --streams, --stream-types,"
                                + " --stream-threads, --repeat or --save");
                }
            }
            for (String s : sections) {
                if (!s.equals("speed") && !s.equals("streams") && !s.equals("steps")) {
                    throw new IllegalArgumentException("--sections: expected speed, streams or steps, got " + s);
                }
            }
            for (String m : modes) {
                if (MODES.stream().noneMatch(mode -> mode.name().equals(m))) {
                    throw new IllegalArgumentException("--modes: expected fast and/or exact, got " + m);
                }
            }
            return new Options(
                    types, threads, sections, modes, streams, streamTypes, streamThreads, repeat, save, files);
        }

        private static List<String> names(String value, String key) {
            List<String> out = new ArrayList<>();
            for (String t : value.split(",")) {
                String u = t.trim().toUpperCase(Locale.ROOT);
                if (!ALL_TYPES.contains(u)) {
                    throw new IllegalArgumentException(
                            "--" + key + ": unknown type " + t + "; expected some of " + String.join(",", ALL_TYPES));
                }
                out.add(u);
            }
            return out;
        }

        private static int[] ints(String value, String key) {
            try {
                int[] out = Arrays.stream(value.split(","))
                        .map(String::trim)
                        .mapToInt(Integer::parseInt)
                        .toArray();
                for (int v : out) {
                    if (v < 1) {
                        throw new NumberFormatException("below 1");
                    }
                }
                return out;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(
                        "--" + key + ": expected positive integers separated by commas, got " + value, e);
            }
        }
    }

    /**
     * Runs the harness.
     *
     * @param args options and GGUF files, as the class comment lists them
     */
    public static void main(String[] args) throws Exception {
        if (Arrays.asList(args).contains("--help")) {
            System.out.println(USAGE);
            return;
        }
        Options o = Options.parse(args);
        LocalRuntime.ensureAvailability();
        System.out.println("CPU kernels: " + LocalRuntime.cpuFeatures() + ", cores: "
                + Runtime.getRuntime().availableProcessors() + ", modes: "
                + String.join(",", MODES.stream().map(Mode::name).toList()));
        Path dir = o.save() != null ? Files.createDirectories(o.save()) : Files.createTempDirectory("tps-models");
        try {
            if (o.sections().contains("speed")) {
                speedSection(o, dir);
            }
            if (o.sections().contains("streams")) {
                streamsSection(o, dir);
            } else if (o.sections().contains("steps")) {
                for (Model m : models(o, o.streamTypes(), dir)) {
                    engineSteps(m, MODES.get(0), o);
                }
            }
        } finally {
            if (o.save() == null) {
                try (var files = Files.list(dir)) {
                    for (Path p : files.toList()) {
                        Files.deleteIfExists(p);
                    }
                }
                Files.deleteIfExists(dir);
            }
        }
    }

    // ---------------------------------------------------------------- models

    /** The models of {@code types} (or the given files), generated into {@code dir} unless already there. */
    private static List<Model> models(Options o, List<String> types, Path dir) throws IOException {
        List<Model> out = new ArrayList<>();
        if (!o.files().isEmpty()) {
            for (Path f : o.files()) {
                out.add(new Model(f.getFileName().toString(), f));
            }
            return out;
        }
        for (String t : types) {
            ToIntFunction<String> typeOf = typeOf(t);
            if (typeOf == null) {
                System.out.println("skipped " + t + ": GgufWriter does not write it yet");
                continue;
            }
            Path p = dir.resolve("llama-768x12-" + t + ".gguf");
            if (GENERATED.add(p)) {
                RandomModels.write(p, SHAPE, typeOf, SEED, w -> {});
            }
            out.add(new Model(t, p));
        }
        return out;
    }

    /** Each 2-D tensor's type for the named type, or null when the writer cannot produce it. */
    private static ToIntFunction<String> typeOf(String type) {
        if (type.equals("Q4_K_M")) {
            return q4kmType(SHAPE.layers());
        }
        OptionalInt id = writerType(type);
        if (id.isEmpty()) {
            return null;
        }
        int t = id.getAsInt();
        return name -> t;
    }

    /**
     * The ggml type id {@link GgufWriter} has a constant for, if it also quantizes a row of it. Looked up by
     * name, so that this compiles and runs before and after the writer gains a type.
     */
    static OptionalInt writerType(String name) {
        try {
            int id = GgufWriter.class.getField(name).getInt(null);
            GgufWriter.quantize(id, new float[256], 256);
            return OptionalInt.of(id);
        } catch (NoSuchFieldException | IllegalAccessException | RuntimeException e) {
            // No such constant, or the writer names a type it cannot encode yet.
            return OptionalInt.empty();
        }
    }

    /**
     * An approximation of llama.cpp's Q4_K_M mix, by its documented behaviour: Q4_K for most matrices;
     * Q6_K for the output matrix; and for {@code attn_v} and {@code ffn_down}, Q6_K in the layers that get
     * more bits (the first eighth, the last eighth, and every third layer in between) and Q4_K elsewhere.
     * llama.cpp's further exceptions (by GQA factor, expert count and architecture) are left out: for this
     * shape, 6 of the 12 layers get Q6_K for those two matrices.
     */
    static ToIntFunction<String> q4kmType(int layers) {
        return name -> {
            if (name.equals("output.weight")) {
                return GgufWriter.Q6_K;
            }
            if (name.endsWith(".attn_v.weight") || name.endsWith(".ffn_down.weight")) {
                int layer = Integer.parseInt(name.substring(4, name.indexOf('.', 4)));
                return moreBits(layer, layers) ? GgufWriter.Q6_K : GgufWriter.Q4_K;
            }
            return GgufWriter.Q4_K;
        };
    }

    private static boolean moreBits(int layer, int layers) {
        int eighth = layers / 8;
        return layer < eighth || layer >= 7 * layers / 8 || (layer - eighth) % 3 == 2;
    }

    // ---------------------------------------------------------------- speed

    private static void speedSection(Options o, Path dir) throws IOException {
        System.out.printf(
                Locale.ROOT,
                "%nread bandwidth of a 512 MB buffer: %.1f GB/s with 1 thread, %.1f GB/s with 2%n"
                        + "(each row's bound uses the bandwidth measured over a buffer the size of that model's weights,%n"
                        + " with the same thread count: a model that fits in the last-level cache is read from there)%n%n",
                NativeModel.readBandwidth(512L << 20, 1, 5),
                NativeModel.readBandwidth(512L << 20, 2, 5));
        List<Model> models = models(o, o.types(), dir);
        if (o.files().isEmpty() && o.types().contains("Q4_K_M")) {
            List<Integer> more = new ArrayList<>();
            for (int l = 0; l < SHAPE.layers(); l++) {
                if (moreBits(l, SHAPE.layers())) {
                    more.add(l);
                }
            }
            System.out.println("Q4_K_M here: Q4_K, with Q6_K for output.weight and for attn_v and ffn_down in layers "
                    + more + "\n");
        }
        System.out.printf(
                Locale.ROOT,
                "%-26s %-8s %7s %10s %12s %12s %10s %10s %12s%n",
                "model",
                "mode",
                "threads",
                "weights MB",
                "prefill t/s",
                "decode t/s",
                "RSS +MB",
                "BW GB/s",
                "of BW bound");
        List<String> csv = new ArrayList<>();
        csv.add("model,file,mode,threads,prefill_tps,decode_tps");
        for (Model m : models) {
            for (Mode mode : MODES) {
                if (!o.modes().contains(mode.name())) {
                    continue;
                }
                if (mode != MODES.get(0) && FLOAT_TYPES.contains(m.label())) {
                    continue; // F32 and F16 weights take the float path in every mode
                }
                for (int threads : o.threads()) {
                    double[] r = measureMedian(m, mode, threads, o.repeat());
                    if (r != null) {
                        csv.add(String.format(
                                Locale.ROOT,
                                "%s,%s,%s,%d,%.2f,%.2f",
                                m.label(),
                                m.file().getFileName(),
                                mode.name(),
                                threads,
                                r[0],
                                r[1]));
                    }
                }
            }
        }
        if (o.save() != null) {
            Path out = o.save().resolve("local-tps.csv");
            Files.write(out, csv);
            System.out.println("\nwrote " + out);
        }
    }

    /**
     * What one load and run of a model measured: decode speed's bound is the tokens per second at which the
     * read bandwidth would carry the weights once per token.
     */
    private record Run(double weightsMb, double prefill, double decode, double rssMb, double bandwidth, double bound) {}

    /**
     * Measures a model {@code repeat} times, prints one row of the median prefill and decode speeds (with the
     * last run's memory and bandwidth), and returns {prefill t/s, decode t/s}; null when the engine refused
     * the model.
     */
    private static double[] measureMedian(Model model, Mode mode, int threads, int repeat) throws IOException {
        List<Run> runs = new ArrayList<>();
        for (int i = 0; i < repeat; i++) {
            Run r = measure(model, mode, threads);
            if (r == null) {
                return null;
            }
            runs.add(r);
        }
        double prefill = median(runs.stream().mapToDouble(Run::prefill).toArray());
        double decode = median(runs.stream().mapToDouble(Run::decode).toArray());
        Run last = runs.get(runs.size() - 1);
        System.out.printf(
                Locale.ROOT,
                "%-26s %-8s %7d %10.1f %12.1f %12.1f %10.1f %10.1f %11.0f%%%n",
                model.label(),
                mode.name(),
                threads,
                last.weightsMb(),
                prefill,
                decode,
                last.rssMb(),
                last.bandwidth(),
                100 * decode / last.bound());
        return new double[] {prefill, decode};
    }

    private static double median(double[] values) {
        double[] v = values.clone();
        Arrays.sort(v);
        int n = v.length;
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }

    /** Loads and runs a model once; null (with a row saying why) when the engine refused it. */
    private static Run measure(Model model, Mode mode, int threads) throws IOException {
        long before = rssKb();
        NativeModel m;
        try {
            m = mode.loader().load(model.file(), threads);
        } catch (NativeEngineException | IllegalArgumentException e) {
            System.out.printf(
                    Locale.ROOT, "%-26s %-8s %7d   refused: %s%n", model.label(), mode.name(), threads, e.getMessage());
            return null;
        }
        try (m;
                NativeModel.Session s = m.newSession(PREFILL + DECODE + 8)) {
            int[] prompt = new Random(1).ints(PREFILL, 0, m.vocabSize()).toArray();
            // Warm up the caches and the thread pool on a short run first.
            try (NativeModel.Session warm = m.newSession(8)) {
                warm.eval(new int[] {1, 2, 3, 4}, 0);
            }
            long t0 = System.nanoTime();
            float[] logits = s.eval(prompt, 0);
            long t1 = System.nanoTime();
            int pos = PREFILL;
            for (int i = 0; i < DECODE; i++) {
                int next = Sampler.argmax(logits);
                logits = s.eval(new int[] {next}, pos++);
            }
            long t2 = System.nanoTime();
            double bandwidth = NativeModel.readBandwidth(Math.max(m.weightBytes(), 1L << 20), threads, 5);
            return new Run(
                    m.weightBytes() / 1e6,
                    PREFILL / ((t1 - t0) / 1e9),
                    DECODE / ((t2 - t1) / 1e9),
                    (rssKb() - before) / 1024.0,
                    bandwidth,
                    bandwidth * 1e9 / m.weightBytes());
        }
    }

    private static long rssKb() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("\\D", ""));
            }
        }
        return 0;
    }

    // ---------------------------------------------------------------- streams

    /** What one stream measured: its tokens, its start and end, and when each chunk with text arrived. */
    private record StreamRun(int tokens, long startNanos, long endNanos, long[] chunkNanos) {
        /** Time from the start to the first chunk; 0 without chunks. */
        long firstChunkNanos() {
            return chunkNanos.length > 0 ? chunkNanos[0] - startNanos : 0;
        }

        /** Times between consecutive chunks. */
        long[] gaps() {
            long[] g = new long[Math.max(0, chunkNanos.length - 1)];
            for (int k = 1; k < chunkNanos.length; k++) {
                g[k - 1] = chunkNanos[k] - chunkNanos[k - 1];
            }
            return g;
        }
    }

    /** What one concurrency level measured. */
    private record Level(
            int streams,
            int tokens,
            double aggregate,
            double steady,
            double firstP50,
            double gapP50,
            double gapP95,
            double callP50,
            double callP95) {}

    private static void streamsSection(Options o, Path dir) throws Exception {
        System.out.printf(
                Locale.ROOT,
                "%nconcurrent streams through LocalGpuClient (%d threads, %d tokens each, greedy after a short prompt)%n"
                        + "first: time to a stream's first chunk; gap: time between a stream's chunks;"
                        + " call/t: a call's time from its start over its tokens (includes waiting for the others)%n"
                        + "steady t/s: tokens per second while every stream is past its prompt and none has ended"
                        + " (agg t/s counts the prompts' time too)%n"
                        + "targets once calls batch: 8 streams >= 5x the aggregate of 1, gap and call/token <= 2x%n%n",
                o.streamThreads(),
                DECODE);
        for (Model m : models(o, o.streamTypes(), dir)) {
            // Batching is measured in the default mode; the speed section compares the modes.
            for (Mode mode : MODES.subList(0, 1)) {
                LocalGpuClient.Builder b = LocalGpuClient.builder()
                        .device("cpu")
                        .id("tps-" + m.label())
                        .modelPath(m.file())
                        .threads(o.streamThreads())
                        .contextSize(256)
                        .maxSessions(8);
                try (LocalGpuClient client = mode.client().apply(b).build()) {
                    // Also warms up the engine thread, the pool and the caches.
                    int most = Arrays.stream(o.streams()).max().orElse(1);
                    List<String> prompts = fullLengthPrompts(client, most);
                    List<Level> levels = new ArrayList<>();
                    for (int n : o.streams()) {
                        levels.add(level(client, prompts, n));
                    }
                    printLevels(m.label() + " " + mode.name(), levels);
                }
                engineSteps(m, mode, o);
            }
        }
    }

    /**
     * The engine alone, without the client's threads and scheduling: decode steps of 1 to 8 sessions as one
     * {@link NativeModel#evalBatch} each (one token per session, positions 16 to 80), the counts interleaved
     * step by step so that a shared machine's slow spells fall on all of them. Prints each count's median step
     * and its tokens per second over one session's, and the same at the mean step.
     */
    private static void engineSteps(Model m, Mode mode, Options o) {
        int[] counts = o.streams();
        int steps = DECODE;
        try (NativeModel model = mode.loader().load(m.file(), o.streamThreads())) {
            NativeModel.Session[][] sessions = new NativeModel.Session[counts.length][];
            double[][] nanos = new double[counts.length][steps];
            int[][] positions = new int[counts.length][];
            float[][][] logits = new float[counts.length][][];
            try {
                for (int c = 0; c < counts.length; c++) {
                    sessions[c] = new NativeModel.Session[counts[c]];
                    positions[c] = new int[counts[c]];
                    logits[c] = new float[counts[c]][model.vocabSize()];
                    for (int i = 0; i < counts[c]; i++) {
                        NativeModel.Session s = model.newSession(16 + steps + 8);
                        sessions[c][i] = s;
                        int[] prompt = new int[16];
                        for (int t = 0; t < prompt.length; t++) {
                            prompt[t] = 1 + (t * 7 + i * 13) % (model.vocabSize() - 1);
                        }
                        s.eval(prompt, 0);
                        positions[c][i] = prompt.length;
                    }
                }
                for (int k = 0; k < steps; k++) {
                    for (int c = 0; c < counts.length; c++) {
                        int n = counts[c];
                        int[][] tokens = new int[n][];
                        for (int i = 0; i < n; i++) {
                            tokens[i] = new int[] {1 + (k * 5 + i * 3) % (model.vocabSize() - 1)};
                        }
                        long t0 = System.nanoTime();
                        model.evalBatch(sessions[c], tokens, positions[c], logits[c]);
                        nanos[c][k] = System.nanoTime() - t0;
                        for (int i = 0; i < n; i++) {
                            positions[c][i]++;
                        }
                    }
                }
            } finally {
                Arrays.stream(sessions)
                        .filter(Objects::nonNull)
                        .flatMap(Arrays::stream)
                        .filter(Objects::nonNull)
                        .forEach(NativeModel.Session::close);
            }
            System.out.printf(
                    Locale.ROOT,
                    "%s engine steps (%d threads, %d steps each, interleaved)%n",
                    m.label(),
                    o.streamThreads(),
                    steps);
            // The median is the engine's usual step; the mean also counts the slow ones (a busy machine's
            // pauses), as the client's steady rate does.
            System.out.printf(
                    Locale.ROOT,
                    "%8s %12s %11s %8s %12s %8s%n",
                    "sessions",
                    "step p50",
                    "t/s",
                    "x1",
                    "step mean",
                    "x1");
            double[] p50 = new double[counts.length];
            double[] mean = new double[counts.length];
            int base = 0;
            for (int c = 0; c < counts.length; c++) {
                p50[c] = median(nanos[c]) / 1e6;
                mean[c] = Arrays.stream(nanos[c]).average().orElse(Double.NaN) / 1e6;
                base = counts[c] == 1 ? c : base;
            }
            for (int c = 0; c < counts.length; c++) {
                double tps = counts[c] * 1000 / p50[c];
                double ratio = tps / (counts[base] * 1000 / p50[base]);
                double meanRatio = (counts[c] / mean[c]) / (counts[base] / mean[base]);
                System.out.printf(
                        Locale.ROOT,
                        "%8d %10.2fms %11.1f %7.2fx %10.2fms %7.2fx%n",
                        counts[c],
                        p50[c],
                        tps,
                        ratio,
                        mean[c],
                        meanRatio);
            }
            System.out.println();
        }
    }

    private static void printLevels(String title, List<Level> levels) {
        System.out.println(title);
        System.out.printf(
                Locale.ROOT,
                "%8s %7s %11s %8s %11s %8s %10s %9s %9s %10s %10s %8s %8s%n",
                "streams",
                "tokens",
                "agg t/s",
                "x1",
                "steady t/s",
                "x1",
                "first p50",
                "gap p50",
                "gap p95",
                "call/t p50",
                "call/t p95",
                "gap x1",
                "call x1");
        Level one = levels.stream().filter(l -> l.streams() == 1).findFirst().orElse(levels.get(0));
        for (Level l : levels) {
            System.out.printf(
                    Locale.ROOT,
                    "%8d %7d %11.1f %7.2fx %11.1f %7.2fx %8.1fms %7.1fms %7.1fms %8.1fms %8.1fms %7.2fx %7.2fx%n",
                    l.streams(),
                    l.tokens(),
                    l.aggregate(),
                    l.aggregate() / one.aggregate(),
                    l.steady(),
                    l.steady() / one.steady(),
                    l.firstP50(),
                    l.gapP50(),
                    l.gapP95(),
                    l.callP50(),
                    l.callP95(),
                    l.gapP50() / one.gapP50(),
                    l.callP50() / one.callP50());
        }
        System.out.println();
    }

    /**
     * Up to {@code n} prompts whose greedy answer runs the full {@value #DECODE} tokens: on random weights
     * some answers reach an end token early, which would leave their streams short. With fewer found in
     * 4n tries, the ones found are repeated.
     */
    private static List<String> fullLengthPrompts(LocalGpuClient client, int n) {
        List<String> found = new ArrayList<>();
        String fallback = null;
        long most = -1;
        for (int i = 0; i < 4 * n && found.size() < n; i++) {
            String p = prompt(i);
            long tokens = client.chat(request(p)).usage().outputTokens();
            if (tokens >= DECODE) {
                found.add(p);
            } else if (tokens > most) {
                most = tokens;
                fallback = p;
            }
        }
        if (found.isEmpty()) {
            System.out.println("no prompt found whose answer runs " + DECODE + " tokens; streams run " + most);
            found.add(fallback);
        }
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(found.get(i % found.size()));
        }
        return out;
    }

    private static String prompt(int i) {
        return "Tell me story number " + i + " about the sea.";
    }

    private static ChatRequest request(String prompt) {
        return ChatRequest.builder()
                .user(prompt)
                .temperature(0)
                .maxTokens(DECODE)
                .build();
    }

    private static Level level(LocalGpuClient client, List<String> prompts, int n) throws Exception {
        List<StreamRun> runs = run(client, prompts, n);
        long start = runs.stream().mapToLong(StreamRun::startNanos).min().orElseThrow();
        long end = runs.stream().mapToLong(StreamRun::endNanos).max().orElseThrow();
        int tokens = runs.stream().mapToInt(StreamRun::tokens).sum();
        List<Double> gaps = new ArrayList<>();
        List<Double> perToken = new ArrayList<>();
        List<Double> first = new ArrayList<>();
        for (StreamRun r : runs) {
            first.add(r.firstChunkNanos() / 1e6);
            for (long g : r.gaps()) {
                gaps.add(g / 1e6);
            }
            if (r.tokens() > 0) {
                perToken.add((r.endNanos() - r.startNanos()) / 1e6 / r.tokens());
            }
        }
        return new Level(
                n,
                tokens,
                tokens / ((end - start) / 1e9),
                steady(runs),
                percentile(first, 50),
                percentile(gaps, 50),
                percentile(gaps, 95),
                percentile(perToken, 50),
                percentile(perToken, 95));
    }

    /**
     * Tokens per second in the window where all streams decode together: from the last stream's first
     * chunk to the first stream's last chunk, the chunks inside it counted and scaled by the runs' tokens
     * per chunk (a chunk carries text, and some tokens carry none). NaN when the window is empty.
     */
    private static double steady(List<StreamRun> runs) {
        long from = Long.MIN_VALUE;
        long to = Long.MAX_VALUE;
        long chunks = 0;
        long tokens = 0;
        for (StreamRun r : runs) {
            if (r.chunkNanos().length < 2) {
                return Double.NaN;
            }
            from = Math.max(from, r.chunkNanos()[0]);
            to = Math.min(to, r.chunkNanos()[r.chunkNanos().length - 1]);
            chunks += r.chunkNanos().length;
            tokens += r.tokens();
        }
        if (to <= from) {
            return Double.NaN;
        }
        long inside = 0;
        for (StreamRun r : runs) {
            for (long t : r.chunkNanos()) {
                if (t > from && t <= to) {
                    inside++;
                }
            }
        }
        return inside * ((double) tokens / chunks) / ((to - from) / 1e9);
    }

    /** Starts {@code n} streams at once, each on its own thread, and reads them to the end. */
    private static List<StreamRun> run(LocalGpuClient client, List<String> prompts, int n) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            CountDownLatch go = new CountDownLatch(1);
            List<Future<StreamRun>> futures = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                ChatRequest request = request(prompts.get(i));
                futures.add(pool.submit(() -> {
                    go.await();
                    long start = System.nanoTime();
                    long[] times = new long[DECODE + 8];
                    int chunks = 0;
                    int tokens;
                    try (ChatStream s = client.stream(request)) {
                        for (ChatChunk c : s) {
                            if (!c.text().isEmpty() && chunks < times.length) {
                                times[chunks++] = System.nanoTime();
                            }
                        }
                        tokens = (int) s.response().usage().outputTokens();
                    }
                    return new StreamRun(tokens, start, System.nanoTime(), Arrays.copyOf(times, chunks));
                }));
            }
            go.countDown();
            List<StreamRun> out = new ArrayList<>();
            for (Future<StreamRun> f : futures) {
                out.add(f.get());
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    private static double percentile(List<Double> values, int p) {
        if (values.isEmpty()) {
            return Double.NaN;
        }
        double[] v = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        int i = (int) Math.ceil(p / 100.0 * v.length) - 1;
        return v[Math.max(0, Math.min(v.length - 1, i))];
    }
}
