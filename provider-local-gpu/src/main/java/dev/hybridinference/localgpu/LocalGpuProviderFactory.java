package dev.hybridinference.localgpu;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.InferenceProviderFactory;
import dev.hybridinference.core.spi.PricingConfig;
import dev.hybridinference.core.spi.ProviderContext;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Builds {@link LocalGpuClient}s from configuration, type {@code local-gpu}:
 *
 * <pre>{@code
 * providers:
 *   local:
 *     type: local-gpu
 *     modelPath: /models/qwen2.5-0.5b-instruct-q4_k_m.gguf
 *     device: auto          # auto (first CUDA device that holds the model, else the CPU) | cpu | cuda:N
 *     threads: 8            # default: all cores
 *     precision: fast       # fast (8-bit activations, integer dot products) | exact; default fast
 *     contextSize: 4096     # default: the model's, at most 4096
 *     maxSessions: 8
 *     maxBatch: 8           # calls computed together in shared forward passes; more wait in arrival order
 *     reusePrefixes: true   # calls without a session reuse the prompt prefix an idle scratch cache holds
 *     kvCacheType: f32      # f32 | f16 (half the KV cache memory)
 *     minP: 0.05            # sampling defaults for this model (requests set temperature, topK, topP, seed)
 *     repetitionPenalty: 1.1
 *     pricing: {type: amortized, perHour: 0.40}   # default free
 * }</pre>
 *
 * <p>A {@code cuda:N} the runtime does not see is refused at {@code device}, naming the devices it sees (or
 * why it sees none). On a CUDA device the weights and every KV cache the client may hold ({@code maxSessions
 * + maxBatch} caches of {@code contextSize} tokens) must fit in the device's free memory, or creating the
 * client fails with a {@link dev.hybridinference.core.CapacityExceededException}; {@code threads} and {@code
 * precision} apply to the CPU backend.
 */
public final class LocalGpuProviderFactory implements InferenceProviderFactory {
    private static final Set<String> KEYS = Set.of(
            "type",
            "modelPath",
            "device",
            "threads",
            "precision",
            "contextSize",
            "maxSessions",
            "maxBatch",
            "reusePrefixes",
            "kvCacheType",
            "minP",
            "repetitionPenalty",
            "pricing");

    /** Used by {@link java.util.ServiceLoader}. */
    public LocalGpuProviderFactory() {}

    @Override
    public String type() {
        return LocalGpuClient.TYPE;
    }

    @Override
    public InferenceClient create(ProviderContext context) {
        ConfigNode c = context.config();
        c.allowOnly(KEYS);
        Path path = Path.of(c.requireString("modelPath"));
        if (!Files.isRegularFile(path)) {
            throw new ConfigurationException(c.pathOf("modelPath"), "no model file at " + path);
        }
        LocalGpuClient.Builder b = LocalGpuClient.builder().context(context).modelPath(path);
        c.string("device").ifPresent(d -> {
            try {
                LocalGpuClient.resolveDevice(d);
            } catch (IllegalArgumentException e) {
                throw new ConfigurationException(c.pathOf("device"), e.getMessage(), e);
            }
            b.device(d);
        });
        c.integer("threads", 1, 1024).ifPresent(b::threads);
        choice(c, "precision", Precision::parse, "exact or fast", b::precision);
        c.integer("contextSize", 1, 1_048_576).ifPresent(b::contextSize);
        c.integer("maxSessions", 1, 1024).ifPresent(b::maxSessions);
        c.integer("maxBatch", 1, LocalGpuClient.MAX_BATCH).ifPresent(b::maxBatch);
        c.bool("reusePrefixes").ifPresent(b::reusePrefixes);
        choice(c, "kvCacheType", KvCacheType::of, "f32 or f16", b::kvCacheType);
        try {
            c.decimal("minP", BigDecimal.ZERO, BigDecimal.ONE).ifPresent(d -> b.minP(d.doubleValue()));
            c.decimal("repetitionPenalty", BigDecimal.ZERO, BigDecimal.TEN)
                    .ifPresent(d -> b.repetitionPenalty(d.doubleValue()));
        } catch (IllegalArgumentException e) {
            throw new ConfigurationException(c.path(), e.getMessage(), e);
        }
        Pricing pricing = PricingConfig.read(c, "free", 1);
        if (!(pricing instanceof Pricing.Amortized)) {
            throw new ConfigurationException(c.pathOf("pricing"), "a local model is priced amortized or free");
        }
        b.amortizedPerHour(((Pricing.Amortized) pricing).perHour());
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw new ConfigurationException(c.pathOf("modelPath"), e.getMessage(), e);
        }
    }
    /** Sets a value named in configuration from its allowed names; any other name is refused at the key. */
    private static <T> void choice(
            ConfigNode c, String key, Function<String, T> parse, String allowed, Consumer<T> set) {
        c.string(key).ifPresent(v -> {
            try {
                set.accept(parse.apply(v));
            } catch (IllegalArgumentException e) {
                throw new ConfigurationException(c.pathOf(key), "expected " + allowed + ", got \"" + v + "\"", e);
            }
        });
    }
}
