"""Getting the raw data, one module per concern.

``http``: resumable HTTP downloads, checksums, credentials from the environment; ``archives``: safe
tar/zip extraction; ``amass_tree``: one AMASS tree under HumanML3D's dataset names (plus HumanAct12);
``humanml3d``: HumanML3D's index, captions and splits; ``assets``: published files fetched with gdown;
``sources``: the download stage's data sources (synthetic, local or remote AMASS, assets) built from them.
"""
from motion.data.download.amass_tree import (
    HUMANML3D_DATASET_FOLDERS,
    bring_humanact12,
    build_amass_tree,
    copy_dataset_folder,
    find_amass_inputs,
    find_humanact12,
)
from motion.data.download.archives import (
    ARCHIVE_SUFFIXES,
    ArchiveLimits,
    check_archive_opens,
    extract_archive,
    is_archive,
    safe_member_path,
)
from motion.data.download.assets import AssetItem, fetch_asset
from motion.data.download.http import (
    AUTH_MODES,
    NO_CREDENTIALS,
    Credentials,
    archive_url,
    check_url,
    credentials_from_env,
    download_file,
    redact,
    sha256_file,
    verify_file,
)
from motion.data.download.humanml3d import prepare_annotations
from motion.data.download.sources import (
    SOURCES,
    AmassSource,
    Assets,
    LocalArchives,
    RemoteArchives,
    check_source,
    make_amass,
    make_assets,
    make_synthetic,
    remote_archives,
)

__all__ = [
    "ARCHIVE_SUFFIXES", "AUTH_MODES", "HUMANML3D_DATASET_FOLDERS", "NO_CREDENTIALS", "SOURCES", "AmassSource",
    "ArchiveLimits",
    "AssetItem", "Assets", "Credentials", "LocalArchives", "RemoteArchives", "archive_url", "bring_humanact12",
    "build_amass_tree", "check_archive_opens", "check_source", "check_url", "copy_dataset_folder",
    "credentials_from_env", "download_file", "extract_archive", "fetch_asset", "find_amass_inputs", "find_humanact12",
    "is_archive", "make_amass", "make_assets", "make_synthetic", "prepare_annotations", "redact", "remote_archives",
    "safe_member_path", "sha256_file", "verify_file",
]
