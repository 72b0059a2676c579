package dev.hybridinference.vllm.internal;

import java.util.HashMap;
import java.util.Map;

/**
 * A small reader of the Prometheus text exposition format: it keeps, per metric name, the sum and the
 * maximum of the values of all its label sets. Comments and malformed lines are skipped. Internal: not
 * part of the public API.
 */
public final class PrometheusText {
    private final Map<String, double[]> values;

    private PrometheusText(Map<String, double[]> values) {
        this.values = values;
    }

    /** Parses an exposition body. */
    public static PrometheusText parse(String body) {
        Map<String, double[]> values = new HashMap<>();
        int pos = 0;
        int len = body.length();
        while (pos < len) {
            int eol = body.indexOf('\n', pos);
            if (eol < 0) {
                eol = len;
            }
            parseLine(body, pos, eol, values);
            pos = eol + 1;
        }
        return new PrometheusText(values);
    }

    private static void parseLine(String s, int start, int end, Map<String, double[]> values) {
        int i = start;
        while (i < end && Character.isWhitespace(s.charAt(i))) {
            i++;
        }
        if (i >= end || s.charAt(i) == '#') {
            return;
        }
        int nameStart = i;
        while (i < end && s.charAt(i) != '{' && !Character.isWhitespace(s.charAt(i))) {
            i++;
        }
        String name = s.substring(nameStart, i);
        if (i < end && s.charAt(i) == '{') {
            boolean quoted = false;
            i++;
            while (i < end) {
                char c = s.charAt(i);
                if (quoted && c == '\\') {
                    i += 2;
                    continue;
                }
                if (c == '"') {
                    quoted = !quoted;
                } else if (c == '}' && !quoted) {
                    break;
                }
                i++;
            }
            if (i >= end) {
                return;
            }
            i++;
        }
        while (i < end && Character.isWhitespace(s.charAt(i))) {
            i++;
        }
        int valueStart = i;
        while (i < end && !Character.isWhitespace(s.charAt(i))) {
            i++;
        }
        double v = parseValue(s.substring(valueStart, i));
        if (name.isEmpty() || Double.isNaN(v)) {
            return;
        }
        double[] agg = values.computeIfAbsent(name, k -> new double[] {0, Double.NEGATIVE_INFINITY});
        agg[0] += v;
        agg[1] = Math.max(agg[1], v);
    }

    private static double parseValue(String token) {
        switch (token) {
            case "+Inf":
            case "Inf":
                return Double.POSITIVE_INFINITY;
            case "-Inf":
                return Double.NEGATIVE_INFINITY;
            default:
                try {
                    return Double.parseDouble(token);
                } catch (NumberFormatException e) {
                    return Double.NaN;
                }
        }
    }

    /** The sum of a metric's values over its label sets; NaN when absent. */
    public double sum(String name) {
        double[] v = values.get(name);
        return v == null ? Double.NaN : v[0];
    }

    /** The largest of a metric's values over its label sets; NaN when absent. */
    public double max(String name) {
        double[] v = values.get(name);
        return v == null ? Double.NaN : v[1];
    }

    /** Whether the metric appeared. */
    public boolean has(String name) {
        return values.containsKey(name);
    }
}
