package dev.hybridinference.planner;

import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.Usage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.Reader;
import java.io.Writer;
import java.math.BigDecimal;
import java.math.MathContext;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.PriorityQueue;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * Recorded traffic: the requests of a trace, replayed at the times they arrived, optionally {@linkplain
 * #scaled(double, long) scaled} to another volume.
 *
 * <h2>The CSV format</h2>
 *
 * <p>A header row names the columns, in any order and any case: {@code timestamp}, {@code input_tokens} and
 * {@code output_tokens} are required, {@code tags} is optional, and other columns are ignored. Then one row per
 * request:
 *
 * <ul>
 *   <li>{@code timestamp}: an ISO-8601 instant ({@code 2026-11-28T10:00:00Z}, {@code
 *       2026-11-28T10:00:00.250+01:00}) or whole epoch milliseconds ({@code 1795860000000});
 *   <li>{@code input_tokens}, {@code output_tokens}: whole numbers of at least 1;
 *   <li>{@code tags}: {@code key=value} pairs separated by {@code ;} ({@code team=search;tier=free}), or
 *       empty. In keys and values, {@code %XX} (two hex digits; a run of them is read as UTF-8) stands for
 *       the character with that code; {@link #writeCsv(Iterable, Writer)} writes {@code %}, {@code ;}, {@code
 *       =}, {@code ,}, {@code "}, carriage return and line feed that way, so that a written cell never needs
 *       CSV quotes. A {@code %} not followed by two hex digits is read as itself.
 * </ul>
 *
 * <p>Cells may be quoted as in RFC 4180 (double quotes, a quote inside written twice); empty lines are
 * skipped. Rows need not be in time order: they are sorted by time, rows with equal times keeping their
 * order. A row may hold at most 65,536 characters and a trace at most 50 million rows. Errors name the
 * source, the line and the column, and what was expected there.
 *
 * <p>Offsets are measured from the earliest request. The {@linkplain #span() span} runs from the earliest
 * request to one second after the latest, unless set with {@link #withSpan(Duration)}.
 *
 * <p>Immutable and thread-safe; each iterator is independent and is not thread-safe.
 */
public final class TraceTraffic implements Traffic {
    static final int MAX_ROW_CHARS = 64 * 1024;
    static final int MAX_ROWS = 50_000_000;

    private static final long NANOS_PER_SECOND = 1_000_000_000L;
    private static final double NANOS_PER_DAY = 86_400e9;
    private static final List<String> REQUIRED = List.of("timestamp", "input_tokens", "output_tokens");
    private static final String TAGS = "tags";
    private static final String WHOLE_NUMBER = "expected a whole number of at least 1";
    private static final int ECHO_LIMIT = 80;

    private final String source;
    private final Instant start;
    private final long[] offsets;
    private final int[] inputTokens;
    private final int[] outputTokens;
    private final int[] tagIds;
    private final List<Map<String, String>> tagSets;
    private final Duration span;
    private final long totalTokens;
    private final double factor;
    private final long seed;

    private TraceTraffic(
            String source,
            Instant start,
            long[] offsets,
            int[] inputTokens,
            int[] outputTokens,
            int[] tagIds,
            List<Map<String, String>> tagSets,
            Duration span,
            long totalTokens,
            double factor,
            long seed) {
        this.source = source;
        this.start = start;
        this.offsets = offsets;
        this.inputTokens = inputTokens;
        this.outputTokens = outputTokens;
        this.tagIds = tagIds;
        this.tagSets = tagSets;
        this.span = span;
        this.totalTokens = totalTokens;
        this.factor = factor;
        this.seed = seed;
    }

    /**
     * Reads a trace from a CSV file in UTF-8; errors name the file by its name.
     *
     * @throws IOException when the file cannot be read
     * @throws IllegalArgumentException when the content is not a trace as described {@linkplain TraceTraffic
     *     above}; the message names the file, the line and the column
     */
    public static TraceTraffic readCsv(Path file) throws IOException {
        Path name = file.getFileName();
        try (Reader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            return readCsv(in, name == null ? file.toString() : name.toString());
        }
    }

    /**
     * Reads a trace in CSV from a reader, which is read to its end and not closed.
     *
     * @param sourceName what errors call the input, such as its file name
     * @throws IOException when the reader fails
     * @throws IllegalArgumentException when the content is not a trace as described {@linkplain TraceTraffic
     *     above}; the message names the source, the line and the column
     */
    public static TraceTraffic readCsv(Reader in, String sourceName) throws IOException {
        return readCsv(in, sourceName, MAX_ROWS);
    }

    static TraceTraffic readCsv(Reader in, String sourceName, int maxRows) throws IOException {
        Objects.requireNonNull(in, "in");
        Objects.requireNonNull(sourceName, "sourceName");
        CsvRecords csv = new CsvRecords(in, sourceName, MAX_ROW_CHARS);
        List<String> header = csv.next();
        if (header == null) {
            throw new IllegalArgumentException(sourceName
                    + " is empty; expected a header row naming the columns timestamp, input_tokens and output_tokens");
        }
        List<String> names = new ArrayList<>();
        for (int i = 0; i < header.size(); i++) {
            String name = header.get(i).strip().toLowerCase(Locale.ROOT);
            if (i == 0 && name.startsWith("\uFEFF")) {
                name = name.substring(1).strip();
            }
            if (!name.isEmpty() && names.contains(name) && (REQUIRED.contains(name) || name.equals(TAGS))) {
                throw csv.error(-1, "the column " + name + " appears twice in the header");
            }
            names.add(name);
        }
        for (String required : REQUIRED) {
            if (!names.contains(required)) {
                throw csv.error(
                        -1,
                        "the header has no column " + required
                                + "; expected the columns timestamp, input_tokens and output_tokens (and optionally"
                                + " tags), in any order, got \"" + echo(String.join(",", header)) + "\"");
            }
        }
        csv.columnNames(names);
        int timeColumn = names.indexOf("timestamp");
        int inputColumn = names.indexOf("input_tokens");
        int outputColumn = names.indexOf("output_tokens");
        int tagsColumn = names.indexOf(TAGS);

        Rows rows = new Rows();
        Map<String, Integer> tagIdsByCell = new HashMap<>();
        List<Map<String, String>> tagSets = new ArrayList<>();
        tagSets.add(Map.of());
        tagIdsByCell.put("", 0);
        List<String> cells;
        while ((cells = csv.next()) != null) {
            if (cells.size() > names.size()) {
                throw csv.error(
                        -1,
                        "expected at most " + names.size() + " cells as in the header, got " + cells.size()
                                + " (a cell holding a comma must be in double quotes)");
            }
            if (rows.size == maxRows) {
                throw csv.error(-1, "more than " + maxRows + " requests; a trace may hold at most " + maxRows);
            }
            long time = timestamp(csv, cells, timeColumn);
            int input = tokens(csv, cells, inputColumn);
            int output = tokens(csv, cells, outputColumn);
            int tagId = 0;
            if (tagsColumn >= 0 && tagsColumn < cells.size()) {
                String cell = cells.get(tagsColumn);
                Integer known = tagIdsByCell.get(cell);
                if (known == null) {
                    known = tagSets.size();
                    tagSets.add(parseTags(csv, tagsColumn, cell));
                    tagIdsByCell.put(cell, known);
                }
                tagId = known;
            }
            rows.add(time, input, output, tagId);
        }
        if (rows.size == 0) {
            throw new IllegalArgumentException(
                    sourceName + " holds no requests; expected rows of timestamp, input_tokens and output_tokens after"
                            + " the header");
        }
        return rows.toTraffic(sourceName, tagSets);
    }

    /**
     * Writes receipts as a trace in the CSV format described {@linkplain TraceTraffic above}: a header {@code
     * timestamp,input_tokens,output_tokens,tags}, then one row per receipt, in the order given, with the
     * receipt's start time, its input and output tokens and its tags. Receipts that replay nothing are left
     * out: those with no output tokens (failed calls) or no input tokens, and keep-warm calls (tagged {@code
     * purpose=keep-warm}). Reading the result gives back the requests with their tags. The writer is
     * flushed, not closed.
     *
     * @return the number of rows written
     * @throws IOException when the writer fails
     * @throws IllegalArgumentException for a receipt whose token count does not fit in an {@code int}
     */
    public static long writeCsv(Iterable<Receipt> receipts, Writer out) throws IOException {
        Objects.requireNonNull(receipts, "receipts");
        Objects.requireNonNull(out, "out");
        out.write("timestamp,input_tokens,output_tokens,tags\n");
        StringBuilder row = new StringBuilder();
        long written = 0;
        for (Receipt receipt : receipts) {
            Usage usage = receipt.usage();
            if (usage.outputTokens() == 0
                    || usage.inputTokens() == 0
                    || "keep-warm".equals(receipt.tags().get("purpose"))) {
                continue;
            }
            if (usage.inputTokens() > Integer.MAX_VALUE || usage.outputTokens() > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("the receipt started at " + receipt.startedAt() + " has "
                        + usage.inputTokens() + " input and " + usage.outputTokens()
                        + " output tokens; a trace holds at most " + Integer.MAX_VALUE + " of each");
            }
            row.setLength(0);
            row.append(receipt.startedAt())
                    .append(',')
                    .append(usage.inputTokens())
                    .append(',')
                    .append(usage.outputTokens())
                    .append(',');
            boolean first = true;
            for (Map.Entry<String, String> tag : new TreeMap<>(receipt.tags()).entrySet()) {
                if (!first) {
                    row.append(';');
                }
                first = false;
                escape(tag.getKey(), row);
                row.append('=');
                escape(tag.getValue(), row);
            }
            out.write(row.append('\n').toString());
            written++;
        }
        out.flush();
        return written;
    }

    /**
     * This trace at {@code factor} times its request rate, drawn from {@code seed}. Below 1, each request is
     * kept with probability {@code factor}. From 1 up, each request is kept and repeated {@code floor(factor)
     * - 1} more times, plus once more with probability {@code factor - floor(factor)}; each repeat arrives a
     * random time under a second after the request it repeats (never at or past the span's end), so that
     * repeats do not all land in the same nanosecond. Requests stay in order of arrival.
     *
     * <p>Scaling a scaled trace multiplies the factors and draws from the new seed. The same factor and seed
     * give the same requests every time.
     *
     * @throws IllegalArgumentException unless {@code factor} is a finite number above 0
     */
    public TraceTraffic scaled(double factor, long seed) {
        if (!(factor > 0) || Double.isInfinite(factor)) {
            throw new IllegalArgumentException("factor must be a finite number above 0, got " + factor);
        }
        return new TraceTraffic(
                source,
                start,
                offsets,
                inputTokens,
                outputTokens,
                tagIds,
                tagSets,
                span,
                totalTokens,
                this.factor * factor,
                seed);
    }

    /**
     * This trace scaled to carry {@code tokensPerDay} tokens a day in expectation: {@link #scaled(double, long)}
     * with the factor {@code tokensPerDay / tokensPerDay()}.
     *
     * @throws IllegalArgumentException when {@code tokensPerDay} is below 1
     */
    public TraceTraffic scaledTo(long tokensPerDay, long seed) {
        if (tokensPerDay < 1) {
            throw new IllegalArgumentException("tokensPerDay must be at least 1, got " + tokensPerDay);
        }
        return scaled(tokensPerDay / tokensPerDay(), seed);
    }

    /**
     * This trace with another span, for a trace that covers more time than its first and last requests show
     * (a whole day, say).
     *
     * @throws IllegalArgumentException unless the span is longer than the latest request's offset
     */
    public TraceTraffic withSpan(Duration span) {
        Objects.requireNonNull(span, "span");
        long last = offsets[offsets.length - 1];
        if (span.compareTo(Duration.ofNanos(last)) <= 0) {
            throw new IllegalArgumentException("span must be longer than the latest request's offset "
                    + Duration.ofNanos(last) + " from the earliest, got " + span);
        }
        return new TraceTraffic(
                source, start, offsets, inputTokens, outputTokens, tagIds, tagSets, span, totalTokens, factor, seed);
    }

    /**
     * Input plus output tokens per day: the trace's total over its span, scaled to a day, times the
     * {@linkplain #scaleFactor() scale factor} (for a scaled trace, the expected volume).
     */
    public double tokensPerDay() {
        return totalTokens * factor * NANOS_PER_DAY / span.toNanos();
    }

    /** The number of requests recorded, before any scaling. */
    public int recordedRequests() {
        return offsets.length;
    }

    /** The time of the earliest request, from which offsets are measured. */
    public Instant start() {
        return start;
    }

    /** The factor the recorded rate is multiplied by; 1 for the trace as recorded. */
    public double scaleFactor() {
        return factor;
    }

    @Override
    public Duration span() {
        return span;
    }

    /** The requests in order of arrival; for a scaled trace, drawn afresh from the seed each time. */
    @Override
    public Iterator<TrafficRequest> iterator() {
        if (factor == 1) {
            return new Recorded();
        }
        return factor < 1 ? new Thinned() : new Repeated();
    }

    /**
     * For example {@code trace.csv, 1200 requests over 2 hours from 2026-11-28T10:00:00Z, 3.6M tokens/day}, or
     * for a scaled trace {@code trace.csv scaled x2.5 (seed 7), ...}.
     */
    @Override
    public String describe() {
        StringBuilder sb = new StringBuilder(source);
        if (factor != 1) {
            sb.append(" scaled x")
                    .append(new BigDecimal(factor)
                            .round(new MathContext(4))
                            .stripTrailingZeros()
                            .toPlainString())
                    .append(" (seed ")
                    .append(seed)
                    .append(')');
        }
        return sb.append(", ")
                .append(offsets.length)
                .append(offsets.length == 1 ? " request" : " requests")
                .append(" over ")
                .append(TrafficText.duration(span))
                .append(" from ")
                .append(start)
                .append(", ")
                .append(TokenCounts.format(Math.round(tokensPerDay())))
                .append(" tokens/day")
                .toString();
    }

    /** The same as {@link #describe()}. */
    @Override
    public String toString() {
        return describe();
    }

    private TrafficRequest request(int i, long offset) {
        return new TrafficRequest(offset, inputTokens[i], outputTokens[i], tagSets.get(tagIds[i]));
    }

    private static long timestamp(CsvRecords csv, List<String> cells, int column) {
        String cell = column < cells.size() ? cells.get(column).strip() : "";
        String expected = "expected an ISO-8601 instant such as 2026-11-28T10:00:00Z or whole epoch milliseconds";
        if (cell.isEmpty()) {
            throw csv.error(column, expected + ", got nothing");
        }
        try {
            if (isInteger(cell)) {
                return Math.multiplyExact(Long.parseLong(cell), 1_000_000L);
            }
            Instant t = Instant.parse(cell);
            return Math.addExact(Math.multiplyExact(t.getEpochSecond(), NANOS_PER_SECOND), t.getNano());
        } catch (DateTimeParseException | NumberFormatException e) {
            throw csv.error(column, expected + ", got \"" + echo(cell) + "\"");
        } catch (ArithmeticException e) {
            throw csv.error(column, "expected a time between the years 1678 and 2261, got \"" + echo(cell) + "\"");
        }
    }

    private static boolean isInteger(String s) {
        int from = s.startsWith("-") ? 1 : 0;
        if (s.length() == from) {
            return false;
        }
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') {
                return false;
            }
        }
        return true;
    }

    private static int tokens(CsvRecords csv, List<String> cells, int column) {
        String cell = column < cells.size() ? cells.get(column).strip() : "";
        if (cell.isEmpty()) {
            throw csv.error(column, WHOLE_NUMBER + ", got nothing");
        }
        if (!isInteger(cell)) {
            throw csv.error(column, WHOLE_NUMBER + ", got \"" + echo(cell) + "\"");
        }
        long value;
        try {
            value = Long.parseLong(cell);
        } catch (NumberFormatException e) {
            value = cell.startsWith("-") ? Long.MIN_VALUE : Long.MAX_VALUE;
        }
        if (value < 1) {
            throw csv.error(column, WHOLE_NUMBER + ", got \"" + echo(cell) + "\"");
        }
        if (value > Integer.MAX_VALUE) {
            throw csv.error(
                    column, WHOLE_NUMBER + " and at most " + Integer.MAX_VALUE + ", got \"" + echo(cell) + "\"");
        }
        return (int) value;
    }

    private static Map<String, String> parseTags(CsvRecords csv, int column, String cell) {
        Map<String, String> tags = new LinkedHashMap<>();
        int from = 0;
        while (from <= cell.length()) {
            int end = cell.indexOf(';', from);
            if (end < 0) {
                end = cell.length();
            }
            String pair = cell.substring(from, end);
            from = end + 1;
            if (pair.isBlank()) {
                continue;
            }
            int eq = pair.indexOf('=');
            if (eq < 0) {
                throw csv.error(
                        column, "expected key=value pairs separated by ';', got \"" + echo(pair) + "\" without '='");
            }
            String key = unescape(pair.substring(0, eq));
            if (tags.put(key, unescape(pair.substring(eq + 1))) != null) {
                throw csv.error(column, "the tag key \"" + echo(key) + "\" appears twice");
            }
        }
        return Map.copyOf(tags);
    }

    private static void escape(String text, StringBuilder out) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '%':
                case ';':
                case '=':
                case ',':
                case '"':
                case '\r':
                case '\n':
                    out.append('%')
                            .append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                            .append(Character.toUpperCase(Character.forDigit(c & 0xF, 16)));
                    break;
                default:
                    out.append(c);
            }
        }
    }

    private static String unescape(String text) {
        if (text.indexOf('%') < 0) {
            return text;
        }
        StringBuilder out = new StringBuilder(text.length());
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        int i = 0;
        while (i < text.length()) {
            if (isEscape(text, i)) {
                // A run of escapes is one UTF-8 sequence, so that %C3%A9 reads as one character.
                bytes.reset();
                while (isEscape(text, i)) {
                    bytes.write(Character.digit(text.charAt(i + 1), 16) << 4 | Character.digit(text.charAt(i + 2), 16));
                    i += 3;
                }
                out.append(new String(bytes.toByteArray(), StandardCharsets.UTF_8));
            } else {
                out.append(text.charAt(i++));
            }
        }
        return out.toString();
    }

    private static boolean isEscape(String text, int i) {
        return i + 2 < text.length()
                && text.charAt(i) == '%'
                && Character.digit(text.charAt(i + 1), 16) >= 0
                && Character.digit(text.charAt(i + 2), 16) >= 0;
    }

    private static String echo(String cell) {
        return cell.length() <= ECHO_LIMIT ? cell : cell.substring(0, ECHO_LIMIT) + "...";
    }

    /** The rows as read, in growing arrays, then sorted by time into a traffic. */
    private static final class Rows {
        private long[] times = new long[1024];
        private int[] inputs = new int[1024];
        private int[] outputs = new int[1024];
        private int[] tags = new int[1024];
        private int size;
        private boolean sorted = true;

        void add(long time, int input, int output, int tagId) {
            if (size == times.length) {
                int capacity = (int) Math.min(Integer.MAX_VALUE - 8, (long) size * 2);
                times = Arrays.copyOf(times, capacity);
                inputs = Arrays.copyOf(inputs, capacity);
                outputs = Arrays.copyOf(outputs, capacity);
                tags = Arrays.copyOf(tags, capacity);
            }
            if (size > 0 && time < times[size - 1]) {
                sorted = false;
            }
            times[size] = time;
            inputs[size] = input;
            outputs[size] = output;
            tags[size] = tagId;
            size++;
        }

        TraceTraffic toTraffic(String source, List<Map<String, String>> tagSets) {
            long[] t = Arrays.copyOf(times, size);
            int[] in = Arrays.copyOf(inputs, size);
            int[] out = Arrays.copyOf(outputs, size);
            int[] tg = Arrays.copyOf(tags, size);
            if (!sorted) {
                int[] order = stableOrder(t);
                t = permute(t, order);
                in = permute(in, order);
                out = permute(out, order);
                tg = permute(tg, order);
            }
            long first = t[0];
            long total = 0;
            for (int i = 0; i < size; i++) {
                t[i] -= first;
                total += (long) in[i] + out[i];
            }
            Instant start = Instant.ofEpochSecond(
                    Math.floorDiv(first, NANOS_PER_SECOND), Math.floorMod(first, NANOS_PER_SECOND));
            Duration span = Duration.ofNanos(t[size - 1]).plusSeconds(1);
            return new TraceTraffic(source, start, t, in, out, tg, List.copyOf(tagSets), span, total, 1, 0);
        }

        /** Indices in order of time; a merge sort, so rows with equal times keep their order. */
        private static int[] stableOrder(long[] keys) {
            int n = keys.length;
            int[] order = new int[n];
            for (int i = 0; i < n; i++) {
                order[i] = i;
            }
            int[] scratch = new int[n];
            for (int width = 1; width < n; width *= 2) {
                for (int lo = 0; lo < n - width; lo += 2 * width) {
                    int mid = lo + width;
                    int hi = Math.min(lo + 2 * width, n);
                    if (keys[order[mid - 1]] <= keys[order[mid]]) {
                        continue; // already in order
                    }
                    int a = lo;
                    int b = mid;
                    int k = lo;
                    while (a < mid && b < hi) {
                        scratch[k++] = keys[order[b]] < keys[order[a]] ? order[b++] : order[a++];
                    }
                    while (a < mid) {
                        scratch[k++] = order[a++];
                    }
                    while (b < hi) {
                        scratch[k++] = order[b++];
                    }
                    System.arraycopy(scratch, lo, order, lo, hi - lo);
                }
            }
            return order;
        }

        private static long[] permute(long[] values, int[] order) {
            long[] out = new long[values.length];
            for (int i = 0; i < order.length; i++) {
                out[i] = values[order[i]];
            }
            return out;
        }

        private static int[] permute(int[] values, int[] order) {
            int[] out = new int[values.length];
            for (int i = 0; i < order.length; i++) {
                out[i] = values[order[i]];
            }
            return out;
        }
    }

    /** The requests as recorded. */
    private final class Recorded implements Iterator<TrafficRequest> {
        private int next;

        @Override
        public boolean hasNext() {
            return next < offsets.length;
        }

        @Override
        public TrafficRequest next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            int i = next++;
            return request(i, offsets[i]);
        }
    }

    /** Each request kept with probability {@code factor}. */
    private final class Thinned implements Iterator<TrafficRequest> {
        private final SplittableRandom random = new SplittableRandom(seed);
        private int next = -1;
        private int scanned;

        @Override
        public boolean hasNext() {
            while (next < 0 && scanned < offsets.length) {
                int i = scanned++;
                if (random.nextDouble() < factor) {
                    next = i;
                }
            }
            return next >= 0;
        }

        @Override
        public TrafficRequest next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            int i = next;
            next = -1;
            return request(i, offsets[i]);
        }
    }

    /**
     * Each request with its repeats. Repeats arrive up to a second late, possibly after later requests, so
     * they wait in a queue ordered by time; one is handed out once no request still to be read can arrive
     * before it (requests are read in order of time, and a request's repeats never precede it).
     */
    private final class Repeated implements Iterator<TrafficRequest> {
        private final SplittableRandom random = new SplittableRandom(seed);
        private final PriorityQueue<Copy> waiting = new PriorityQueue<>();
        private final long lastNanos = span.toNanos() - 1;
        private final int whole = (int) Math.min(Integer.MAX_VALUE, (long) Math.floor(factor));
        private final double fraction = factor - Math.floor(factor);
        private int scanned;
        private long sequence;

        @Override
        public boolean hasNext() {
            while (scanned < offsets.length && (waiting.isEmpty() || waiting.peek().offset > offsets[scanned])) {
                int i = scanned++;
                int copies = whole + (random.nextDouble() < fraction ? 1 : 0);
                waiting.add(new Copy(offsets[i], sequence++, i));
                for (int c = 1; c < copies; c++) {
                    long shifted = offsets[i] + (long) (random.nextDouble() * NANOS_PER_SECOND);
                    waiting.add(new Copy(Math.min(shifted, lastNanos), sequence++, i));
                }
            }
            return !waiting.isEmpty();
        }

        @Override
        public TrafficRequest next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            Copy c = waiting.poll();
            return request(c.index, c.offset);
        }
    }

    /** A request or repeat waiting to be handed out: ordered by time, then by when it was drawn. */
    private record Copy(long offset, long sequence, int index) implements Comparable<Copy> {
        @Override
        public int compareTo(Copy o) {
            int byTime = Long.compare(offset, o.offset);
            return byTime != 0 ? byTime : Long.compare(sequence, o.sequence);
        }
    }
}
