package dev.hybridinference.testkit.cloudrun;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.hybridinference.testkit.internal.LoopbackHttp;
import dev.hybridinference.testkit.internal.LoopbackHttp.Exchange;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A fake of the two Google services that hand out ID tokens, on loopback (plain HTTP/1.1), so that
 * google-auth-library's {@code ComputeEngineCredentials} and {@code ServiceAccountCredentials} get tokens from it
 * as they would on Google Cloud, and a {@link CloudRunEmulator} built with {@link
 * CloudRunEmulator.Builder#requireIdToken} accepts them.
 *
 * <p><b>The metadata server</b>, found by the library through the environment variable {@code
 * GCE_METADATA_HOST=}{@link #hostPort()} (read from the environment only, so a test JVM needs it set when it
 * starts, with this server on a port known in advance): {@code GET
 * /computeMetadata/v1/instance/service-accounts/default/identity?audience=..[&format=full]} answers the raw ID
 * token as text. Every {@code /computeMetadata/} request must carry {@code Metadata-Flavor: Google}, else 403;
 * every answer carries {@code Metadata-Flavor: Google}. {@code GET /} answers too (the library's "am I on Google
 * Cloud" probe, made by {@code GoogleCredentials.getApplicationDefault()}), as do the default account's {@code
 * email} and {@code token} (an opaque access token), {@code project/project-id} and {@code
 * universe/universe-domain}.
 *
 * <p><b>The OAuth token route</b>, {@link #tokenUri()}, named as {@code token_uri} in the service-account keys that
 * {@link #serviceAccountKeyJson} makes: {@code POST /token} with {@code
 * grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>}. The assertion's RS256 signature is
 * checked with the public key of the key it names ({@code kid}); its {@code iss} must be the key's {@code
 * client_email}, its {@code aud} this token URI, its {@code exp} ahead and at most an hour after {@code iat}. With a
 * {@code target_audience} claim it answers {@code {"id_token": "<JWT>"}} (what {@code
 * ServiceAccountCredentials.idTokenWithAudience} reads), with a {@code scope} claim an access token. Refusals are
 * Google's OAuth error bodies, {@code {"error": "invalid_grant", "error_description": ...}} (wording approximate).
 *
 * <p><b>ID tokens</b> are JWTs signed RS256 with a key of this server: header {@code {"alg":"RS256","kid":..,
 * "typ":"JWT"}}, payload {@code iss} ({@link #issuer()}), {@code aud}, {@code azp}, {@code sub} (the account's
 * numeric id), {@code email} and {@code email_verified} (from the metadata server only with {@code format=full}, as
 * there), {@code iat} and {@code exp} ({@link #tokenLifetime} ahead, rounded up to a whole second). Nothing checks
 * the signature: google-auth-library does not, and neither does the emulator.
 *
 * <p>For tests; no real credential is ever involved. Thread-safe; close it to stop.
 */
public final class GoogleTokenServer implements AutoCloseable {
    /** The issuer of Google's ID tokens. */
    private static final String ISSUER = "https://accounts.google.com";

    /** The project the metadata server and the generated keys name. */
    static final String PROJECT_ID = "emulated-project";

    /** The metadata server's default service account. */
    static final String DEFAULT_ACCOUNT = "123456789012-compute@developer.gserviceaccount.com";

    private static final String DEFAULT_ACCOUNT_ID = "104729000000000000001";
    private static final String JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    private static final String GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token";
    private static final String IDENTITY = "/computeMetadata/v1/instance/service-accounts/default/identity";
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final Base64.Encoder B64URL = Base64.getUrlEncoder().withoutPadding();
    private static final Base64.Decoder B64URL_DECODER = Base64.getUrlDecoder();

    /** A service account whose key this server generated. */
    private record Account(String email, String clientId, PublicKey publicKey) {}

    private final LoopbackHttp http;
    private final SecureRandom random = new SecureRandom();
    private final PrivateKey signingKey;
    private final String signingKeyId;
    private final Map<String, Account> accountsByKeyId = new ConcurrentHashMap<>();
    private final AtomicLong idTokensIssued = new AtomicLong();
    private final List<String> audiences = new ArrayList<>();
    private volatile Duration lifetime = Duration.ofHours(1);

    private GoogleTokenServer(int port) throws IOException {
        KeyPair serverKey = rsaKeyPair();
        this.signingKey = serverKey.getPrivate();
        this.signingKeyId = randomHex(20);
        this.http = new LoopbackHttp(this::handle, "google-token-server", port);
    }

    /**
     * Starts the server on a loopback port.
     *
     * @param port the port, or 0 for any free one; tests that use the metadata route need a port fixed before the
     *     test JVM starts, since {@code GCE_METADATA_HOST} is read from its environment
     * @return the running server
     * @throws IllegalStateException when the port cannot be bound
     */
    public static GoogleTokenServer start(int port) {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port must be 0 to 65535, got " + port);
        }
        try {
            return new GoogleTokenServer(port);
        } catch (IOException e) {
            throw new IllegalStateException(
                    "cannot start the Google token server on port " + port + ": " + e.getMessage(), e);
        }
    }

    /** {@code 127.0.0.1:PORT}: the value for {@code GCE_METADATA_HOST}. */
    public String hostPort() {
        return http.address().getHostAddress() + ":" + http.port();
    }

    /** {@code http://127.0.0.1:PORT/token}: the OAuth token route, the {@code token_uri} of generated keys. */
    public String tokenUri() {
        return "http://" + hostPort() + "/token";
    }

    /** {@code https://accounts.google.com}: the {@code iss} of every ID token issued, as of Google's real ones. */
    public String issuer() {
        return ISSUER;
    }

    /**
     * How long the tokens issued from now on stay valid (default one hour); their {@code exp} is this far after
     * issue, rounded up to a whole second.
     *
     * @param d a positive duration
     */
    public void tokenLifetime(Duration d) {
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException("the token lifetime must be positive, got " + d);
        }
        this.lifetime = d;
    }

    /** ID tokens issued so far, by the metadata route and the token route together. */
    public long idTokensIssued() {
        return idTokensIssued.get();
    }

    /** The audiences of the ID tokens issued so far, in order (one entry per token). */
    public List<String> audiencesRequested() {
        synchronized (audiences) {
            return List.copyOf(audiences);
        }
    }

    /**
     * A new service-account key file, as the Cloud console downloads one, for an account this server then knows:
     * {@code type} {@code service_account}, {@code project_id}, {@code private_key_id}, {@code private_key} (a
     * fresh RSA-2048 key, PKCS#8 PEM), {@code client_email}, {@code client_id}, {@code token_uri} ({@link
     * #tokenUri()}) and {@code universe_domain} {@code googleapis.com}. The token route verifies the assertions
     * signed with it by its public key. Each call makes a new key, even for the same email.
     *
     * @param clientEmail the account's email, such as {@code invoker@project.iam.gserviceaccount.com}
     * @return the JSON text of the key file
     */
    public String serviceAccountKeyJson(String clientEmail) {
        Objects.requireNonNull(clientEmail, "clientEmail");
        KeyPair key = rsaKeyPair();
        String keyId = randomHex(20);
        String clientId = numericId();
        accountsByKeyId.put(keyId, new Account(clientEmail, clientId, key.getPublic()));
        String pem = "-----BEGIN PRIVATE KEY-----\n"
                + Base64.getMimeEncoder(64, new byte[] {'\n'})
                        .encodeToString(key.getPrivate().getEncoded())
                + "\n-----END PRIVATE KEY-----\n";
        ObjectNode json = MAPPER.createObjectNode();
        json.put("type", "service_account")
                .put("project_id", PROJECT_ID)
                .put("private_key_id", keyId)
                .put("private_key", pem)
                .put("client_email", clientEmail)
                .put("client_id", clientId)
                .put("auth_uri", "https://accounts.google.com/o/oauth2/auth")
                .put("token_uri", tokenUri())
                .put("auth_provider_x509_cert_url", "https://www.googleapis.com/oauth2/v1/certs")
                .put("universe_domain", "googleapis.com");
        return json.toPrettyString();
    }

    /** Stops the server. */
    @Override
    public void close() {
        http.close();
    }

    // ---- routes ----

    private void handle(Exchange ex) throws IOException {
        String path = ex.path();
        if (path.equals("/token")) {
            token(ex);
        } else if (path.equals("/")) {
            metadataText(ex, 200, "computeMetadata/\n");
        } else if (path.equals("/computeMetadata") || path.startsWith("/computeMetadata/")) {
            metadata(ex, path);
        } else {
            sendText(ex, 404, "text/html; charset=UTF-8", "Not Found\n", false);
        }
    }

    private void metadata(Exchange ex, String path) throws IOException {
        if (!"Google".equalsIgnoreCase(ex.header("metadata-flavor"))) {
            // The metadata server refuses requests without the header, which a browser or a proxy would not add.
            metadataText(ex, 403, "Missing required header \"Metadata-Flavor\": \"Google\"\n");
            return;
        }
        if (!ex.method().equals("GET")) {
            metadataText(ex, 405, "Method Not Allowed\n");
            return;
        }
        switch (path) {
            case "/computeMetadata", "/computeMetadata/" -> metadataText(ex, 200, "v1/\n");
            case "/computeMetadata/v1", "/computeMetadata/v1/" ->
                metadataText(ex, 200, "instance/\noauth/\nproject/\nuniverse/\n");
            case "/computeMetadata/v1/instance/service-accounts", "/computeMetadata/v1/instance/service-accounts/" ->
                metadataText(ex, 200, "default/\n" + DEFAULT_ACCOUNT + "/\n");
            case "/computeMetadata/v1/instance/service-accounts/default/email" ->
                metadataText(ex, 200, DEFAULT_ACCOUNT);
            case "/computeMetadata/v1/instance/service-accounts/default/token" -> {
                ObjectNode body = MAPPER.createObjectNode();
                body.put("access_token", "ya29.emulated-" + randomHex(24))
                        .put("expires_in", lifetimeSeconds())
                        .put("token_type", "Bearer");
                sendMetadata(ex, 200, "application/json", body.toString());
            }
            case "/computeMetadata/v1/project/project-id" -> metadataText(ex, 200, PROJECT_ID);
            case "/computeMetadata/v1/universe/universe-domain" -> metadataText(ex, 200, "googleapis.com");
            case IDENTITY -> identity(ex);
            default -> metadataText(ex, 404, "Not Found\n");
        }
    }

    private void identity(Exchange ex) throws IOException {
        String audience = ex.queryParameter("audience");
        if (audience == null || audience.isEmpty()) {
            metadataText(ex, 400, "non-empty audience parameter required\n");
            return;
        }
        boolean full = "full".equalsIgnoreCase(ex.queryParameter("format"));
        metadataText(ex, 200, idToken(audience, DEFAULT_ACCOUNT, DEFAULT_ACCOUNT_ID, full));
    }

    private void token(Exchange ex) throws IOException {
        if (!ex.method().equals("POST")) {
            oauthError(ex, 405, "invalid_request", "The token endpoint takes POST.");
            return;
        }
        Map<String, String> form = LoopbackHttp.formFields(new String(ex.body(), StandardCharsets.UTF_8));
        String grantType = form.get("grant_type");
        if (!JWT_BEARER.equals(grantType)) {
            oauthError(ex, 400, "unsupported_grant_type", "Invalid grant_type: " + grantType);
            return;
        }
        String assertion = form.get("assertion");
        String[] parts = assertion == null ? new String[0] : assertion.split("\\.", -1);
        JsonNode header;
        JsonNode claims;
        try {
            if (parts.length != 3) {
                throw new IllegalArgumentException("not three parts");
            }
            header = MAPPER.readTree(B64URL_DECODER.decode(parts[0]));
            claims = MAPPER.readTree(B64URL_DECODER.decode(parts[1]));
            if (!header.isObject() || !claims.isObject()) {
                throw new IllegalArgumentException("not JSON objects");
            }
        } catch (IOException | IllegalArgumentException e) {
            oauthError(ex, 400, "invalid_grant", "Invalid JWT: the assertion is not a signed JWT.");
            return;
        }
        Account account = accountsByKeyId.get(header.path("kid").asText(""));
        if (account == null) {
            account = accountsByKeyId.values().stream()
                    .filter(a -> a.email().equals(claims.path("iss").asText()))
                    .findFirst()
                    .orElse(null);
        }
        if (account == null || !"RS256".equals(header.path("alg").asText()) || !verifies(account.publicKey(), parts)) {
            oauthError(ex, 400, "invalid_grant", "Invalid JWT Signature.");
            return;
        }
        if (!account.email().equals(claims.path("iss").asText())) {
            oauthError(ex, 400, "invalid_grant", "Invalid JWT: the issuer is not the key's service account.");
            return;
        }
        String aud = claims.path("aud").asText("");
        if (!aud.equals(tokenUri()) && !aud.equals(GOOGLE_TOKEN_URI)) {
            oauthError(ex, 400, "invalid_grant", "Invalid JWT: Failed audience check.");
            return;
        }
        long now = System.currentTimeMillis() / 1000;
        long iat = claims.path("iat").asLong(-1);
        long exp = claims.path("exp").asLong(-1);
        if (iat < 0 || exp <= now || exp - iat > 3600 || iat > now + 300) {
            oauthError(
                    ex,
                    400,
                    "invalid_grant",
                    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
                            + " Check your iat and exp values in the JWT claim.");
            return;
        }
        String targetAudience = claims.path("target_audience").asText("");
        String scope = claims.path("scope").asText("");
        ObjectNode body = MAPPER.createObjectNode();
        if (!targetAudience.isEmpty()) {
            body.put("id_token", idToken(targetAudience, account.email(), account.clientId(), true));
        } else if (!scope.isEmpty()) {
            body.put("access_token", "ya29.emulated-" + randomHex(24))
                    .put("expires_in", lifetimeSeconds())
                    .put("token_type", "Bearer");
        } else {
            oauthError(ex, 400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.");
            return;
        }
        sendText(ex, 200, "application/json; charset=utf-8", body.toString(), false);
    }

    // ---- tokens ----

    private String idToken(String audience, String email, String subject, boolean withEmail) {
        long nowMillis = System.currentTimeMillis();
        long iat = nowMillis / 1000;
        long exp = (nowMillis + lifetime.toMillis() + 999) / 1000;
        ObjectNode header = MAPPER.createObjectNode();
        header.put("alg", "RS256").put("kid", signingKeyId).put("typ", "JWT");
        ObjectNode payload = MAPPER.createObjectNode();
        payload.put("aud", audience).put("azp", withEmail ? email : subject);
        if (withEmail) {
            payload.put("email", email).put("email_verified", true);
        }
        payload.put("exp", exp).put("iat", iat).put("iss", ISSUER).put("sub", subject);
        String signingInput = B64URL.encodeToString(header.toString().getBytes(StandardCharsets.UTF_8)) + "."
                + B64URL.encodeToString(payload.toString().getBytes(StandardCharsets.UTF_8));
        String token = signingInput + "." + B64URL.encodeToString(sign(signingInput));
        idTokensIssued.incrementAndGet();
        synchronized (audiences) {
            audiences.add(audience);
        }
        return token;
    }

    private byte[] sign(String signingInput) {
        try {
            Signature signature = Signature.getInstance("SHA256withRSA");
            signature.initSign(signingKey);
            signature.update(signingInput.getBytes(StandardCharsets.US_ASCII));
            return signature.sign();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot sign an ID token", e);
        }
    }

    private static boolean verifies(PublicKey key, String[] parts) {
        try {
            Signature signature = Signature.getInstance("SHA256withRSA");
            signature.initVerify(key);
            signature.update((parts[0] + "." + parts[1]).getBytes(StandardCharsets.US_ASCII));
            return signature.verify(B64URL_DECODER.decode(parts[2]));
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            return false;
        }
    }

    private long lifetimeSeconds() {
        return Math.max(1, (lifetime.toMillis() + 999) / 1000);
    }

    private static KeyPair rsaKeyPair() {
        try {
            KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA");
            generator.initialize(2048);
            return generator.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot generate an RSA key", e);
        }
    }

    private String randomHex(int bytes) {
        byte[] b = new byte[bytes];
        random.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    private String numericId() {
        StringBuilder id = new StringBuilder("1");
        for (int i = 0; i < 20; i++) {
            id.append(random.nextInt(10));
        }
        return id.toString();
    }

    // ---- responses ----

    private void metadataText(Exchange ex, int status, String body) throws IOException {
        sendMetadata(ex, status, "application/text", body);
    }

    private void sendMetadata(Exchange ex, int status, String contentType, String body) throws IOException {
        sendText(ex, status, contentType, body, true);
    }

    private static void sendText(Exchange ex, int status, String contentType, String body, boolean metadata)
            throws IOException {
        Map<String, String> headers = new LinkedHashMap<>();
        if (metadata) {
            headers.put("Metadata-Flavor", "Google");
            headers.put("Server", "Metadata Server for VM");
        }
        headers.put("Content-Type", contentType);
        ex.sendFixed(status, headers, body.getBytes(StandardCharsets.UTF_8));
    }

    private static void oauthError(Exchange ex, int status, String error, String description) throws IOException {
        ObjectNode body = MAPPER.createObjectNode();
        body.put("error", error).put("error_description", description);
        sendText(ex, status, "application/json; charset=utf-8", body.toString(), false);
    }

    @Override
    public String toString() {
        return "GoogleTokenServer[" + hostPort() + ", " + idTokensIssued.get() + " ID tokens issued]";
    }
}
