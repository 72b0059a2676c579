package dev.hybridinference.faults;

import java.util.LinkedHashMap;
import java.util.Map;

/** Configuration documents as users write them, for the fault servers of a test. */
final class Yaml {
    private Yaml() {}

    /**
     * A {@code vllm} provider section named {@code id} at {@code baseUrl}, with the test key from the
     * environment, per-token pricing, no scraping and short timeouts; {@code overrides} are {@code key,
     * value} pairs that replace or add settings (a null value removes one).
     */
    static String vllm(String id, String baseUrl, String... overrides) {
        Map<String, String> s = new LinkedHashMap<>();
        s.put("type", "vllm");
        s.put("baseUrl", baseUrl);
        s.put("model", "fault-model");
        s.put("apiKey", "${KEY}");
        s.put("scrapeInterval", "0s");
        s.put("connectTimeout", "2s");
        s.put("readTimeout", "5s");
        s.put("callTimeout", "15s");
        s.put("pricing", "{type: per-token, inputPerMillion: 1, outputPerMillion: 2}");
        for (int i = 0; i + 1 < overrides.length; i += 2) {
            if (overrides[i + 1] == null) {
                s.remove(overrides[i]);
            } else {
                s.put(overrides[i], overrides[i + 1]);
            }
        }
        StringBuilder sb = new StringBuilder("  ").append(id).append(":\n");
        s.forEach((k, v) -> sb.append("    ").append(k).append(": ").append(v).append('\n'));
        return sb.toString();
    }

    /** A document with one vllm provider, {@code main}. */
    static String single(String baseUrl, String... overrides) {
        return "providers:\n" + vllm("main", baseUrl, overrides);
    }
}
