//! Pod volumes: the sources pods of this platform use (emptyDir, hostPath, configMap, secret,
//! persistentVolumeClaim, projected, downwardAPI, nfs, csi, image). Any other source (the
//! in-tree cloud disks, ephemeral claim templates, ...) is refused, never dropped.

use k8s_pb::api::core::v1;

use super::container::{field_selector, named, resource_selector};
use super::core::local_reference;
use super::fields::{Converted, Obj};

/// A Volume: its name and its (inline) source.
pub(super) fn volume(mut v: v1::Volume) -> Converted {
    let mut o = Obj::default();
    o.str("name", &mut v.name);
    o.inline(&mut v.volume_source, source)?;
    o.done(v, "Volume")
}

fn source(mut s: v1::VolumeSource) -> Converted {
    let mut o = Obj::default();
    o.obj("hostPath", &mut s.host_path, |mut h| {
        let mut o = Obj::default();
        o.str("path", &mut h.path);
        o.str("type", &mut h.r#type);
        o.done(h, "HostPathVolumeSource")
    })?;
    o.obj("emptyDir", &mut s.empty_dir, |mut e| {
        let mut o = Obj::default();
        o.str("medium", &mut e.medium);
        o.quantity("sizeLimit", &mut e.size_limit);
        o.done(e, "EmptyDirVolumeSource")
    })?;
    o.obj("secret", &mut s.secret, |mut v| {
        let mut o = Obj::default();
        o.str("secretName", &mut v.secret_name);
        o.list("items", &mut v.items, key_to_path)?;
        o.int("defaultMode", &mut v.default_mode);
        o.flag("optional", &mut v.optional);
        o.done(v, "SecretVolumeSource")
    })?;
    o.obj("nfs", &mut s.nfs, |mut n| {
        let mut o = Obj::default();
        o.str("server", &mut n.server);
        o.str("path", &mut n.path);
        o.flag0("readOnly", &mut n.read_only);
        o.done(n, "NFSVolumeSource")
    })?;
    o.obj(
        "persistentVolumeClaim",
        &mut s.persistent_volume_claim,
        |mut c| {
            let mut o = Obj::default();
            o.str("claimName", &mut c.claim_name);
            o.flag0("readOnly", &mut c.read_only);
            o.done(c, "PersistentVolumeClaimVolumeSource")
        },
    )?;
    o.obj("downwardAPI", &mut s.downward_api, |mut d| {
        let mut o = Obj::default();
        o.list("items", &mut d.items, downward_file)?;
        o.int("defaultMode", &mut d.default_mode);
        o.done(d, "DownwardAPIVolumeSource")
    })?;
    o.obj("configMap", &mut s.config_map, |mut c| {
        let mut o = named(&mut c.local_object_reference)?;
        o.list("items", &mut c.items, key_to_path)?;
        o.int("defaultMode", &mut c.default_mode);
        o.flag("optional", &mut c.optional);
        o.done(c, "ConfigMapVolumeSource")
    })?;
    o.obj("projected", &mut s.projected, |mut p| {
        let mut o = Obj::default();
        o.list("sources", &mut p.sources, projection)?;
        o.int("defaultMode", &mut p.default_mode);
        o.done(p, "ProjectedVolumeSource")
    })?;
    o.obj("csi", &mut s.csi, |mut c| {
        let mut o = Obj::default();
        o.str("driver", &mut c.driver);
        o.flag("readOnly", &mut c.read_only);
        o.str("fsType", &mut c.fs_type);
        o.map("volumeAttributes", &mut c.volume_attributes);
        o.obj(
            "nodePublishSecretRef",
            &mut c.node_publish_secret_ref,
            local_reference,
        )?;
        o.done(c, "CSIVolumeSource")
    })?;
    o.obj("image", &mut s.image, |mut i| {
        let mut o = Obj::default();
        o.str("reference", &mut i.reference);
        o.str("pullPolicy", &mut i.pull_policy);
        o.done(i, "ImageVolumeSource")
    })?;
    o.done(s, "VolumeSource")
}

fn key_to_path(mut k: v1::KeyToPath) -> Converted {
    let mut o = Obj::default();
    o.str("key", &mut k.key);
    o.str("path", &mut k.path);
    o.int("mode", &mut k.mode);
    o.done(k, "KeyToPath")
}

fn downward_file(mut f: v1::DownwardAPIVolumeFile) -> Converted {
    let mut o = Obj::default();
    o.str("path", &mut f.path);
    o.obj("fieldRef", &mut f.field_ref, field_selector)?;
    o.obj(
        "resourceFieldRef",
        &mut f.resource_field_ref,
        resource_selector,
    )?;
    o.int("mode", &mut f.mode);
    o.done(f, "DownwardAPIVolumeFile")
}

fn projection(mut p: v1::VolumeProjection) -> Converted {
    let mut o = Obj::default();
    o.obj("secret", &mut p.secret, |mut s| {
        let mut o = named(&mut s.local_object_reference)?;
        o.list("items", &mut s.items, key_to_path)?;
        o.flag("optional", &mut s.optional);
        o.done(s, "SecretProjection")
    })?;
    o.obj("downwardAPI", &mut p.downward_api, |mut d| {
        let mut o = Obj::default();
        o.list("items", &mut d.items, downward_file)?;
        o.done(d, "DownwardAPIProjection")
    })?;
    o.obj("configMap", &mut p.config_map, |mut c| {
        let mut o = named(&mut c.local_object_reference)?;
        o.list("items", &mut c.items, key_to_path)?;
        o.flag("optional", &mut c.optional);
        o.done(c, "ConfigMapProjection")
    })?;
    o.obj(
        "serviceAccountToken",
        &mut p.service_account_token,
        |mut t| {
            let mut o = Obj::default();
            o.str("audience", &mut t.audience);
            o.int("expirationSeconds", &mut t.expiration_seconds);
            o.str("path", &mut t.path);
            o.done(t, "ServiceAccountTokenProjection")
        },
    )?;
    o.done(p, "VolumeProjection")
}
