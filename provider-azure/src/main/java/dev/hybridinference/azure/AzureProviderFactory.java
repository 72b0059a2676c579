package dev.hybridinference.azure;

import com.azure.identity.ClientSecretCredentialBuilder;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.http.ResponseLimits;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.InferenceProviderFactory;
import dev.hybridinference.core.spi.PricingConfig;
import dev.hybridinference.core.spi.ProviderContext;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;

/**
 * Builds {@link AzureClient}s from configuration, type {@code azure}:
 *
 * <pre>{@code
 * providers:
 *   foundry:
 *     type: azure
 *     endpoint: https://my-resource.openai.azure.com/openai/v1
 *     api: openai-v1              # openai-v1 (default) | inference-sdk (the legacy azure-ai-inference SDK)
 *     auth: key                   # key (default) | entra
 *     apiKey: ${AZURE_OPENAI_API_KEY}   # auth: key; from the environment, never written in the file
 *     # auth: entra — DefaultAzureCredential unless tenantId, clientId and clientSecret are all given
 *     # scopes: [https://cognitiveservices.azure.com/.default]
 *     # tenantId: ..., clientId: ..., clientSecret: ${AZURE_CLIENT_SECRET}
 *     model: gpt-4o-mini          # the deployment name (required on openai-v1)
 *     apiVersion: 2024-05-01-preview    # inference-sdk only: or 2024-08-01-preview
 *     extraParameters: pass-through     # optional: pass-through | drop | error (sends top_k and the header)
 *     deployment: serverless      # serverless (per token, default) | managed (your instances, per hour)
 *     instances: 1                # managed: for the default per-instance-hour pricing
 *     caCertificates: ca.pem      # optional: PEM certificates to trust instead of the JVM's (a private CA)
 *     connectTimeout: 10s
 *     readTimeout: 2m
 *     callTimeout: 10m
 *     limits: {maxLineBytes: 1048576}
 *     pricing: {type: per-token, inputPerMillion: 0.30, outputPerMillion: 0.61}
 * }</pre>
 *
 * <p>{@code pricing} takes the core's types ({@code per-token}, {@code per-instance-hour} and the others);
 * without it, a serverless deployment is priced per token at zero and a managed one per instance hour at
 * zero.
 */
public final class AzureProviderFactory implements InferenceProviderFactory {
    private static final Set<String> KEYS = Set.of(
            "type",
            "endpoint",
            "api",
            "auth",
            "apiKey",
            "scopes",
            "tenantId",
            "clientId",
            "clientSecret",
            "model",
            "apiVersion",
            "extraParameters",
            "deployment",
            "instances",
            "caCertificates",
            "connectTimeout",
            "readTimeout",
            "callTimeout",
            "limits",
            "pricing");

    /** Used by {@link java.util.ServiceLoader}. */
    public AzureProviderFactory() {}

    @Override
    public String type() {
        return AzureClient.TYPE;
    }

    @Override
    public InferenceClient create(ProviderContext context) {
        ConfigNode c = context.config();
        c.allowOnly(KEYS);
        AzureClient.Builder b = AzureClient.builder().context(context);
        String endpoint = c.string("endpoint")
                .orElseThrow(() -> c.missing(
                        "endpoint",
                        "the deployment's https:// URL, such as https://my-resource.openai.azure.com/openai/v1"));
        apply(c, "endpoint", () -> b.endpoint(endpoint));
        String api = c.string("api").orElse(AzureClient.Api.OPENAI_V1.configName());
        b.api(AzureClient.Api.fromConfig(api).orElseThrow(() -> c.error("api", "openai-v1 or inference-sdk")));
        String auth = c.string("auth").orElse("key");
        switch (auth) {
            case "key":
                for (String k : List.of("scopes", "tenantId", "clientId", "clientSecret")) {
                    if (c.has(k)) {
                        throw c.error("auth", "entra when " + k + " is set");
                    }
                }
                String key = c.string("apiKey")
                        .filter(k -> !k.isBlank())
                        .orElseThrow(() -> c.missing(
                                "apiKey", "the resource's key, from the environment: apiKey: ${AZURE_API_KEY}"));
                b.apiKey(key);
                break;
            case "entra":
                if (c.has("apiKey")) {
                    throw c.error("auth", "key when apiKey is set");
                }
                if (c.has("scopes")) {
                    List<String> scopes = c.stringList("scopes");
                    apply(c, "scopes", () -> b.scopes(scopes));
                }
                List<String> secret = new ArrayList<>();
                for (String k : List.of("tenantId", "clientId", "clientSecret")) {
                    c.string(k).filter(v -> !v.isBlank()).ifPresent(secret::add);
                }
                if (secret.size() == 3) {
                    b.tokenCredential(new ClientSecretCredentialBuilder()
                            .tenantId(c.string("tenantId").orElseThrow())
                            .clientId(c.string("clientId").orElseThrow())
                            .clientSecret(c.string("clientSecret").orElseThrow())
                            .build());
                } else if (secret.isEmpty()) {
                    b.defaultAzureCredential();
                } else {
                    throw c.error("clientSecret", "tenantId, clientId and clientSecret together (or none of them)");
                }
                break;
            default:
                throw c.error("auth", "key or entra");
        }
        c.string("model").filter(m -> !m.isBlank()).ifPresent(m -> apply(c, "model", () -> b.model(m)));
        c.string("apiVersion").ifPresent(v -> apply(c, "apiVersion", () -> b.apiVersion(v)));
        c.string("extraParameters")
                .ifPresent(v -> b.extraParameters(AzureClient.ExtraParameters.fromHeaderValue(v)
                        .orElseThrow(() -> c.error("extraParameters", "pass-through, drop or error"))));
        String deployment = c.string("deployment").orElse("serverless");
        switch (deployment) {
            case "serverless":
                if (c.has("instances")) {
                    throw c.error("deployment", "managed when instances is set");
                }
                b.deployment(DeploymentKind.SERVERLESS);
                break;
            case "managed":
                b.deployment(DeploymentKind.SERVER);
                break;
            default:
                throw c.error("deployment", "serverless or managed");
        }
        int instances = c.integer("instances", 1, PricingConfig.MAX_INSTANCES).orElse(1);
        b.instances(instances);
        // Blank is absent (the JVM's trust), so that `caCertificates: ${AZURE_CA_CERTIFICATES:-}` works.
        c.string("caCertificates").filter(f -> !f.isBlank()).ifPresent(f -> b.trust(trustManager(c, Path.of(f))));
        c.duration("connectTimeout", Duration.ofMillis(1), Duration.ofMinutes(10))
                .ifPresent(b::connectTimeout);
        c.duration("readTimeout", Duration.ofMillis(1), Duration.ofHours(1)).ifPresent(b::readTimeout);
        c.duration("callTimeout", Duration.ofMillis(1), Duration.ofHours(24)).ifPresent(b::callTimeout);
        c.object("limits").ifPresent(l -> b.limits(ResponseLimits.read(l)));
        if (c.has("pricing")) {
            try {
                b.pricing(PricingConfig.read(
                        c, deployment.equals("managed") ? "per-instance-hour" : "per-token", instances));
            } catch (IllegalArgumentException e) {
                throw new ConfigurationException(c.pathOf("pricing"), e.getMessage());
            }
        }
        try {
            return b.build();
        } catch (IllegalStateException e) {
            String m = String.valueOf(e.getMessage());
            String key = m.startsWith("model") ? "model" : m.startsWith("apiVersion") ? "apiVersion" : "auth";
            throw new ConfigurationException(c.pathOf(key), e.getMessage());
        }
    }

    /** A trust manager for the PEM certificates in {@code file}. */
    private static X509TrustManager trustManager(ConfigNode c, Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            Collection<? extends Certificate> certs =
                    CertificateFactory.getInstance("X.509").generateCertificates(in);
            if (certs.isEmpty()) {
                throw c.error("caCertificates", "a PEM file with at least one certificate");
            }
            KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
            store.load(null, null);
            int i = 0;
            for (Certificate cert : certs) {
                store.setCertificateEntry("ca-" + i++, cert);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(store);
            return Arrays.stream(tmf.getTrustManagers())
                    .filter(t -> t instanceof X509TrustManager)
                    .map(t -> (X509TrustManager) t)
                    .findFirst()
                    .orElseThrow(() -> c.error("caCertificates", "certificates the JVM can trust"));
        } catch (IOException | GeneralSecurityException e) {
            throw new ConfigurationException(
                    c.pathOf("caCertificates"), "cannot read certificates from " + file + ": " + e.getMessage());
        }
    }

    private static void apply(ConfigNode c, String key, Runnable set) {
        try {
            set.run();
        } catch (IllegalArgumentException e) {
            throw new ConfigurationException(c.pathOf(key), e.getMessage());
        }
    }
}
