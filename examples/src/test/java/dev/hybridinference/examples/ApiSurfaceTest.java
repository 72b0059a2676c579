package dev.hybridinference.examples;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.azure.AzureClient;
import dev.hybridinference.cloudrun.CloudRunClient;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.localgpu.LocalGpuClient;
import dev.hybridinference.sagemaker.SageMakerClient;
import dev.hybridinference.testkit.OpenAiCompatibleServer;
import dev.hybridinference.vllm.VllmClient;
import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The public API of every published module mentions only JDK types and our own public types: no type from an
 * {@code internal} package and no third-party type (Jackson, OkHttp, Okio, Kotlin, SnakeYAML, SLF4J, cloud
 * SDKs), so that those can change without breaking applications. Every class of every package outside
 * {@code internal} is read by reflection: its supertypes, type parameters, public members, and the protected
 * members of classes that can be extended (the provider SPI is made of those).
 *
 * <p>{@link #ALLOWED} lists the exceptions, each with its reason; it is meant to stay short.
 */
class ApiSurfaceTest {
    /** A class of each published module with Java code, to find the module's classes from. */
    private static final List<Class<?>> MODULES = List.of(
            InferenceClient.class,
            VllmClient.class,
            LocalGpuClient.class,
            SageMakerClient.class,
            CloudRunClient.class,
            AzureClient.class,
            OpenAiCompatibleServer.class,
            dev.hybridinference.planner.Planner.class);

    /**
     * Signatures allowed to mention another type anyway, as {@code "owner#member -> type"} with the reason.
     * Provider authors' SPI may need a third-party type where no small type of ours can stand for it.
     */
    static final Map<String, String> ALLOWED = Map.of(
            "dev.hybridinference.core.http.OpenAiTransport$Builder#httpClient(okhttp3.OkHttpClient) -> okhttp3.OkHttpClient",
            "the HTTP SPI runs on OkHttp: a provider author may hand in one client so that several transports share"
                    + " its connection pool and dispatcher; users of the API never see it",
            "dev.hybridinference.sagemaker.SageMakerClient$Builder#credentials(software.amazon.awssdk.auth.credentials.AwsCredentialsProvider)"
                    + " -> software.amazon.awssdk.auth.credentials.AwsCredentialsProvider",
            "AWS credentials come in many kinds (assume-role, SSO, web identity, a container's role) that only the AWS"
                    + " SDK's own provider type can stand for; configuration covers the common ones without it",
            "dev.hybridinference.cloudrun.CloudRunClient$Builder#credentials(com.google.auth.oauth2.GoogleCredentials)"
                    + " -> com.google.auth.oauth2.GoogleCredentials",
            "Google credentials (service account keys, workload identity federation, impersonation) are only what"
                    + " google-auth-library's own type can stand for; configuration covers the common ones without it",
            "dev.hybridinference.azure.AzureClient$Builder#tokenCredential(com.azure.core.credential.TokenCredential)"
                    + " -> com.azure.core.credential.TokenCredential",
            "Entra ID credentials (managed identity, workload identity, certificates, the developer tools' logins)"
                    + " are only what azure-identity's own type can stand for; configuration covers key and client-secret"
                    + " auth without it");

    @Test
    void publicSignaturesMentionOnlyTheJdkAndOurPublicTypes() throws Exception {
        List<String> violations = new ArrayList<>();
        int checked = 0;
        for (Class<?> anchor : MODULES) {
            for (String name : classNames(anchor)) {
                Class<?> c = Class.forName(name, false, anchor.getClassLoader());
                if (!isApi(c)) {
                    continue;
                }
                checked++;
                check(c, violations);
            }
        }
        assertThat(checked).as("public API classes found").isGreaterThan(50);
        violations.removeIf(ALLOWED::containsKey);
        assertThat(violations)
                .as("public signatures that mention internal or third-party types (make the member non-public,"
                        + " move the type out of .internal, or wrap the third-party type in one of ours)")
                .isEmpty();
    }

    @Test
    void theCheckSeesInternalAndThirdPartyTypes() {
        // The scan must be able to fail: these are what it looks for.
        assertThat(forbidden(dev.hybridinference.core.internal.LibraryVersions.class))
                .isTrue();
        assertThat(forbidden(com.fasterxml.jackson.databind.JsonNode.class)).isTrue();
        assertThat(forbidden(okhttp3.OkHttpClient.class)).isTrue();
        assertThat(forbidden(InferenceClient.class)).isFalse();
        assertThat(forbidden(java.time.Duration.class)).isFalse();
        List<String> v = new ArrayList<>();
        check(Leaky.class, v);
        assertThat(v)
                .containsExactlyInAnyOrder(
                        Leaky.class.getName() + "#node() -> com.fasterxml.jackson.databind.JsonNode",
                        Leaky.class.getName() + "#take(java.util.List) -> okhttp3.Request",
                        Leaky.class.getName() + "#hook -> dev.hybridinference.core.internal.LibraryVersions");
    }

    /** A class with the leaks the scan must find: a return type, a type argument, a protected field. */
    @SuppressWarnings("unused")
    public static class Leaky {
        protected dev.hybridinference.core.internal.LibraryVersions hook;

        public com.fasterxml.jackson.databind.JsonNode node() {
            return null;
        }

        public void take(List<? extends okhttp3.Request> requests) {}

        private okhttp3.OkHttpClient hidden() {
            return null;
        }
    }

    /** Every class in the jar or folder {@code anchor} was loaded from, outside {@code internal} packages. */
    private static List<String> classNames(Class<?> anchor) throws IOException, URISyntaxException {
        Path root = Path.of(
                anchor.getProtectionDomain().getCodeSource().getLocation().toURI());
        List<String> entries = new ArrayList<>();
        if (Files.isDirectory(root)) {
            try (Stream<Path> files = Files.walk(root)) {
                files.filter(p -> p.toString().endsWith(".class"))
                        .forEach(p -> entries.add(root.relativize(p).toString().replace('\\', '/')));
            }
        } else {
            try (JarFile jar = new JarFile(root.toFile())) {
                jar.stream()
                        .map(e -> e.getName())
                        .filter(n -> n.endsWith(".class"))
                        .forEach(entries::add);
            }
        }
        List<String> names = new ArrayList<>();
        for (String e : entries) {
            String name = e.substring(0, e.length() - ".class".length()).replace('/', '.');
            if (name.startsWith("dev.hybridinference.")
                    && !isInternal(name)
                    && !name.endsWith("module-info")
                    && !name.endsWith("package-info")) {
                names.add(name);
            }
        }
        Collections.sort(names);
        return names;
    }

    private static boolean isInternal(String className) {
        return ("." + className + ".").contains(".internal.");
    }

    /** Public, and reachable: every enclosing class public too. */
    private static boolean isApi(Class<?> c) {
        for (Class<?> k = c; k != null; k = k.getEnclosingClass()) {
            if (!Modifier.isPublic(k.getModifiers()) || k.isAnonymousClass() || k.isLocalClass()) {
                return false;
            }
        }
        return true;
    }

    /** Whether protected members of {@code c} can be reached: it can be extended from outside its package. */
    private static boolean extensible(Class<?> c) {
        if (Modifier.isFinal(c.getModifiers()) || c.isEnum() || c.isRecord() || c.isInterface()) {
            return false;
        }
        for (Constructor<?> k : c.getDeclaredConstructors()) {
            if (Modifier.isPublic(k.getModifiers()) || Modifier.isProtected(k.getModifiers())) {
                return true;
            }
        }
        return false;
    }

    private static boolean visible(int modifiers, boolean extensible) {
        return Modifier.isPublic(modifiers) || (extensible && Modifier.isProtected(modifiers));
    }

    static void check(Class<?> c, List<String> violations) {
        String owner = c.getName();
        boolean ext = extensible(c);
        Set<String> found = new TreeSet<>();
        report(owner + " (supertype)", c.getGenericSuperclass(), found);
        for (Type t : c.getGenericInterfaces()) {
            report(owner + " (supertype)", t, found);
        }
        for (TypeVariable<?> v : c.getTypeParameters()) {
            for (Type b : v.getBounds()) {
                report(owner + " (type parameter)", b, found);
            }
        }
        for (Field f : c.getDeclaredFields()) {
            if (!f.isSynthetic() && visible(f.getModifiers(), ext)) {
                report(owner + "#" + f.getName(), f.getGenericType(), found);
            }
        }
        List<Executable> members = new ArrayList<>();
        for (Method m : c.getDeclaredMethods()) {
            if (!m.isSynthetic() && !m.isBridge() && visible(m.getModifiers(), ext)) {
                members.add(m);
            }
        }
        for (Constructor<?> k : c.getDeclaredConstructors()) {
            if (!k.isSynthetic() && visible(k.getModifiers(), ext)) {
                members.add(k);
            }
        }
        for (Executable e : members) {
            StringBuilder params = new StringBuilder();
            for (Class<?> p : e.getParameterTypes()) {
                params.append(params.length() == 0 ? "" : ", ").append(p.getName());
            }
            String where = owner + "#" + (e instanceof Constructor ? "<init>" : e.getName()) + "(" + params + ")";
            if (e instanceof Method m) {
                report(where, m.getGenericReturnType(), found);
            }
            for (Type t : e.getGenericParameterTypes()) {
                report(where, t, found);
            }
            for (Type t : e.getGenericExceptionTypes()) {
                report(where, t, found);
            }
            for (TypeVariable<?> v : e.getTypeParameters()) {
                for (Type b : v.getBounds()) {
                    report(where, b, found);
                }
            }
        }
        violations.addAll(found);
    }

    private static void report(String where, Type type, Set<String> found) {
        for (Class<?> c : mentioned(type, new HashSet<>())) {
            if (forbidden(c)) {
                found.add(where + " -> " + c.getName());
            }
        }
    }

    /** Every class a generic type mentions: the raw type, type arguments, bounds, array components. */
    private static Set<Class<?>> mentioned(Type t, Set<Type> seen) {
        Set<Class<?>> out = new HashSet<>();
        if (t == null || !seen.add(t)) {
            return out;
        }
        if (t instanceof Class<?> c) {
            while (c.isArray()) {
                c = c.getComponentType();
            }
            out.add(c);
        } else if (t instanceof ParameterizedType p) {
            out.addAll(mentioned(p.getRawType(), seen));
            out.addAll(mentioned(p.getOwnerType(), seen));
            for (Type a : p.getActualTypeArguments()) {
                out.addAll(mentioned(a, seen));
            }
        } else if (t instanceof WildcardType w) {
            for (Type b : w.getUpperBounds()) {
                out.addAll(mentioned(b, seen));
            }
            for (Type b : w.getLowerBounds()) {
                out.addAll(mentioned(b, seen));
            }
        } else if (t instanceof GenericArrayType a) {
            out.addAll(mentioned(a.getGenericComponentType(), seen));
        } else if (t instanceof TypeVariable<?> v) {
            for (Type b : v.getBounds()) {
                out.addAll(mentioned(b, seen));
            }
        }
        return out;
    }

    /** Anything but a primitive, a JDK type or one of our types outside {@code internal} packages. */
    static boolean forbidden(Class<?> c) {
        if (c.isPrimitive()) {
            return false;
        }
        String n = c.getName();
        if (n.startsWith("java.") || n.startsWith("javax.")) {
            return false;
        }
        return !n.startsWith("dev.hybridinference.") || isInternal(n);
    }
}
