// The viewer's one message catalogue (English and Korean) and locale-aware formatting.
// Browser language by default, switchable, remembered in localStorage.
// A message is a string with `{name}` placeholders, or `{one, other}` chosen by `{count}`.

const MESSAGES = {
  en: {
    language: "Language",
    loading: "Loading…",
    skip: "Skip to content",
    copy: "Copy",
    copied: "Copied.",
    copy_failed: "Select the text and copy it.",
    "wait.moment": "a moment",

    "nav.label": "Main",
    "nav.worklist": "Worklist",
    "nav.users": "Users",
    "nav.account": "Account",
    "notice.no_password": "You signed in with a one-time link and have no password yet.",
    "notice.set_password": "Set a password on the account page",
    "user.menu": "User menu",
    "user.signed_in_as": "Signed in as",
    "user.no_roles": "No roles yet.",
    "user.sign_out": "Sign out",
    "notfound.title": "Page not found",
    "notfound.text": "There is no page at this address.",

    "error.unexpected": "Something went wrong. Reload the page and try again.",
    "error.network": "The server cannot be reached. Check the network connection and try again.",
    "error.unauthenticated": "Please sign in.",
    "error.csrf": "The request was refused for security reasons. Reload the page and try again.",
    "error.forbidden": "You are not allowed to do this.",
    "error.not_found": "Not found.",
    "error.conflict": "This already exists: {message}",
    "error.rejected": "The server refused the request: {message}",
    "error.unavailable": "The service is temporarily unavailable. Try again shortly.",
    "error.server": "The server had a problem. Try again; if it persists, tell your administrator.",

    "signin.title": "Sign in",
    "signin.heading": "Sign in to readroom",
    "signin.link_checking": "Checking your sign-in link…",
    "signin.invalid_link": "This sign-in link is invalid, already used or expired. Ask your administrator for a new one.",
    "signin.or": "or",
    "signin.no_methods": "No sign-in method is configured. Contact your administrator.",
    "signin.with_provider": "Sign in with {name}",
    "signin.username": "Username",
    "signin.password": "Password",
    "signin.totp": "Authentication code",
    "signin.totp_hint": "The 6-digit code from your authenticator app.",
    "signin.submit": "Sign in",
    "signin.missing": "Enter your username and password.",
    "signin.checking": "Signing in…",
    "signin.totp_required": "Enter the 6-digit code from your authenticator app.",
    "signin.totp_format": "The code has 6 digits.",
    "signin.invalid_totp": "That code is not valid. Wait for the next code and try again.",
    "signin.invalid_credentials": "The username or password is not correct.",
    "signin.locked": "Too many failed attempts: this account is locked. Try again in {wait}.",
    "signin.throttled": "Too many sign-in attempts from this network. Try again in {wait}.",
    "signin.local_disabled": "Password sign-in is turned off on this server. Use your organisation's sign-in.",
    "signin.expired": "Your session expired. Please sign in again.",
    "signin.signed_out": "You have signed out.",
    "signin.oidc_error": "Single sign-on failed ({code}). Try again or contact your administrator.",
    "signin.oidc_error.provider_error": "The identity provider did not sign you in. Try again.",
    "signin.oidc_error.account_disabled": "Your readroom account is disabled. Contact your administrator.",
    "signin.oidc_error.unavailable": "Sign-in is temporarily unavailable. Try again shortly.",
    "signin.oidc_error.sign_in_failed": "Single sign-on failed. Try again or contact your administrator.",
    "signin.oidc_error.unknown_provider": "This identity provider is not configured.",
    "signin.oidc_error.oidc_config": "Single sign-on is not configured correctly. Contact your administrator.",
    "signin.oidc_error.provider_unreachable": "The identity provider cannot be reached. Try again shortly.",
    "signin.oidc_error.invalid_callback": "The sign-in was not completed in time or was already used. Try again.",
    "signin.oidc_error.token_exchange": "The identity provider did not confirm the sign-in. Try again.",
    "signin.oidc_error.invalid_id_token": "The identity provider's answer could not be verified.",
    "signin.oidc_error.acr_required": "readroom needs a stronger sign-in at your organisation (for example with a second factor).",
    "signin.oidc_error.mfa_required": "readroom needs multi-factor authentication at your organisation's sign-in.",

    "worklist.title": "Worklist",
    "worklist.note": "Cases assigned to you. Images are streamed; they are never stored in your browser.",
    "worklist.empty": "No cases are assigned to you right now.",
    "worklist.empty_no_grading_role": "No cases are assigned to you. Cases appear here once you hold a grader or adjudicator role and are assigned cases.",
    "worklist.count": { one: "{count} assigned case", other: "{count} assigned cases" },
    "col.case": "Case",
    "col.study": "Study",
    "col.subject": "Subject",
    "col.visit": "Visit",
    "col.role": "Role",
    "col.roles": "Roles",
    "col.status": "Status",
    "col.due": "Due",
    "col.exams": "Exams",
    "col.user": "User",

    "case.title": "Case",
    "case.heading": "Case {label}",
    "case.breadcrumb": "Breadcrumb",
    "case.not_found": "This case does not exist or is not assigned to you.",
    "case.exam_count": "Exams",
    "case.access": "Your access",
    "case.access_view": "Images and metadata",
    "case.access_metadata": "Metadata only (no images)",
    "case.exams": "Exams",
    "case.no_exams": "This case has no exams.",
    "case.exam_id": "Exam",
    "case.kind": "Kind",
    "case.eye": "Eye",
    "case.frames": "Images",
    "case.size": "Size (px)",
    "case.spacing": "Pixel spacing",
    "case.spacing_value": "{value} µm",
    "case.assignments": "Assignments",
    "case.no_assignments": "Nobody is assigned to this case.",
    "case.images": "Image viewer",
    "case.stream_metadata_only": "Your roles allow the case's metadata only; images are shown to assigned graders and adjudicators.",
    "case.details": "Case details",
    "viewer.stage_label": "Image viewer. Keyboard shortcuts: press ? for the list.",
    "viewer.tools": "Viewer tools",
    "viewer.exam": "Exam",
    "viewer.tool.pan": "Pan",
    "viewer.tool.window_level": "W/L",
    "viewer.tool.measure": "Measure",
    "viewer.red_free": "Red-free",
    "viewer.invert": "Invert",
    "viewer.grid": "ETDRS grid",
    "viewer.fit": "Fit",
    "viewer.reset": "Reset",
    "viewer.retry": "Try again",
    "viewer.layout.single": "Single",
    "viewer.layout.both_eyes": "OD | OS",
    "viewer.layout.prior": "Current | prior",
    "viewer.layout_unavailable": "This exam has no fellow eye or prior visit to show beside it.",
    "viewer.lossy": "LOSSY",
    "viewer.lossless": "LOSSLESS",
    "viewer.badge_lossy_title": "Compressed video: the view is moving or the exact frame is still arriving. Do not grade fine detail yet.",
    "viewer.badge_lossless_title": "Exact pixels: this browser re-hashed the drawn frame and it matches the worker's render.",
    "viewer.bscan": "B-scan {index} / {count}",
    "viewer.wl": "W {window} · L {level} · γ {gamma}",
    "viewer.quality": "{rtt} ms · loss {loss} %",
    "viewer.quality_good": "Connection good",
    "viewer.quality_fair": "Connection fair: images may lag",
    "viewer.quality_poor": "Connection poor: images lag and arrive blurred",
    "viewer.quality_unknown": "Connection quality not measured yet",
    "viewer.connecting": "Connecting to the image server…",
    "viewer.opening": "Opening the case (decrypting in the image server's memory)…",
    "viewer.reconnecting": "Reconnecting…",
    "viewer.lost": "The connection to the image server was lost.",
    "viewer.busy": "The image server is busy.",
    "viewer.unreachable": "The image server cannot be reached.",
    "viewer.retrying_in": "Trying again in {seconds} s.",
    "viewer.gave_up": "The image server could not be reached after several attempts.",
    "viewer.refused": "The image server refused the connection: {reason}",
    "viewer.not_allowed": "This case is no longer available to you.",
    "viewer.unsupported": "This browser cannot receive the image stream (no WebRTC). Use a current Chrome, Edge, Firefox or Safari.",
    "viewer.cannot_verify": "This page cannot check exact frames (it needs HTTPS); the view stays LOSSY.",
    "viewer.verify_failed": "The exact frame did not match its checksum and is not shown.",
    "viewer.error.too_large": "The request was too large.",
    "viewer.error.bad_json": "The request was not valid JSON.",
    "viewer.error.bad_message": "The request was malformed: {message}",
    "viewer.error.unknown_type": "The image server does not know this request.",
    "viewer.error.bad_version": "This page is out of date; reload it.",
    "viewer.error.out_of_range": "Out of range: {message}",
    "viewer.error.not_available": "Not available: {message}",
    "viewer.error.forbidden": "Not allowed: {message}",
    "viewer.error.rate_limited": "Too many requests; slow down.",
    "viewer.error.internal": "The image server could not show this view.",
    "viewer.shortcuts": "Keyboard and mouse",
    "viewer.key.slice": "Previous / next B-scan",
    "viewer.key.slice10": "10 B-scans back / forward",
    "viewer.key.slice_ends": "First / last B-scan",
    "viewer.key.pan": "Pan left / right",
    "viewer.key.zoom": "Zoom out / in",
    "viewer.key.fit": "Fit to the screen",
    "viewer.key.one": "1:1 (one image pixel per screen pixel)",
    "viewer.key.exam": "Previous / next exam",
    "viewer.key.layout": "Layout: single, OD | OS, current | prior",
    "viewer.key.red_free": "Red-free on / off",
    "viewer.key.invert": "Invert on / off",
    "viewer.key.window_level": "Window/level tool (drag)",
    "viewer.key.measure": "Measure tool (drag a caliper)",
    "viewer.key.clear": "Clear calipers",
    "viewer.key.grid": "ETDRS grid on / off",
    "viewer.key.reset": "Reset the view",
    "viewer.key.help": "Show / hide this list",
    "viewer.key.right_drag_keys": "Right drag",
    "viewer.key.right_drag": "Window/level",
    "viewer.key.shift_click_keys": "Shift + click",
    "viewer.key.shift_click": "Centre the ETDRS grid on the fovea",

    "account.title": "Account",
    "account.profile": "Profile",
    "account.username": "Username",
    "account.display_name": "Display name",
    "account.email": "Email",
    "account.roles": "Roles",
    "account.method": "Signed in with",
    "account.method_password": "Password",
    "account.method_link": "One-time sign-in link",
    "account.method_oidc": "Single sign-on ({provider})",
    "account.session_ends": "Session ends at the latest",
    "account.idle": "Signs out after inactivity",
    "account.minutes": "{count} min",
    "account.password": "Password",
    "account.password_note": "Change your password. You need the current one.",
    "account.password_none": "You have no password yet. Set one so you can sign in without a link.",
    "account.password_none_oidc": "You sign in through your organisation; a readroom password is optional.",
    "account.current_password": "Current password",
    "account.new_password": "New password",
    "account.repeat_password": "New password again",
    "account.password_rule": "At least {count} characters.",
    "account.change_password": "Change password",
    "account.set_password": "Set password",
    "account.current_required": "Enter your current password.",
    "account.password_mismatch": "The two new passwords are different.",
    "account.password_saved": "Your password has been saved.",
    "account.password_refused": "The password was not accepted: {message}",
    "account.totp": "Two-step verification (TOTP)",
    "account.totp_on": "On: signing in with your password also asks for a code from your authenticator app.",
    "account.totp_off": "Off. Turn it on to ask for a code from an authenticator app at every password sign-in.",
    "account.totp_setup": "Set up",
    "account.totp_instructions": "Add this account to your authenticator app: type in the secret key (or import the otpauth URL), then enter the code the app shows.",
    "account.totp_secret": "Secret key",
    "account.totp_url": "otpauth URL",
    "account.totp_code": "6-digit code",
    "account.totp_enable": "Turn on",
    "account.totp_disable": "Turn off",
    "account.totp_enabled": "Two-step verification is on.",
    "account.totp_disabled": "Two-step verification is off.",
    "account.totp_refused": "The code was not accepted: {message}",
    "account.sessions": "Sessions",
    "account.logout_all": "Sign out everywhere",
    "account.logout_all_note": "Ends your sessions in every browser and on every device, including this one.",

    "admin.title": "Users",
    "admin.forbidden": "Only administrators may manage users.",
    "admin.users": "All users",
    "admin.no_users": "No users yet.",
    "admin.create_heading": "New user",
    "admin.create_note": "New users sign in first with a one-time link and then set their own password.",
    "admin.username_hint": "1–64 letters, digits or . - _ @",
    "admin.display_name_required": "Enter a display name.",
    "admin.initial_roles": "Roles",
    "admin.study": "Study",
    "admin.all_studies": "All studies",
    "admin.study_hint": "For grader, adjudicator and coordinator. Auditor and admin are always for all studies.",
    "admin.create": "Create user",
    "admin.created": "User {username} created.",
    "admin.username_taken": "This username is already taken.",
    "admin.link_heading": "One-time sign-in link for {username}",
    "admin.link_note": "Shown only once. Give it to the user over a trusted channel; it works once and expires {expires}.",
    "admin.link_label": "Sign-in link",
    "admin.link_done": "Done, hide the link",
    "admin.link_issued": "New sign-in link for {username}.",
    "admin.signin_state": "Sign-in",
    "admin.actions": "Actions",
    "admin.password_yes": "Password set",
    "admin.password_no": "No password",
    "admin.totp_yes": "TOTP on",
    "admin.totp_no": "TOTP off",
    "admin.identities": "Identity providers: {list}",
    "admin.from_idp": "from {source}",
    "admin.active": "Active",
    "admin.disabled": "Disabled",
    "admin.locked_until": "Locked until {time}",
    "admin.revoke": "Revoke",
    "admin.revoke_label": "Revoke {role} from {username}",
    "admin.revoked": "Revoked {role} from {username}.",
    "admin.grant": "Grant",
    "admin.grant_label": "Grant a role to {username}",
    "admin.granted": "Granted {role} to {username}.",
    "admin.new_link": "New sign-in link",
    "admin.disable": "Disable",
    "admin.enable": "Enable",
    "admin.disabled_done": "{username} is disabled and signed out everywhere.",
    "admin.enabled": "{username} is enabled.",
    "admin.unlock": "Unlock",
    "admin.unlocked": "{username} is unlocked.",

    "role.grader": "Grader",
    "role.adjudicator": "Adjudicator",
    "role.coordinator": "Coordinator",
    "role.auditor": "Auditor",
    "role.admin": "Admin",
    "role.scope": "{role} · {study}",
    "role.all_studies": "all studies",
    "status.assigned": "Assigned",
    "status.in_progress": "In progress",
    "status.done": "Done",
    "kind.fundus": "Fundus",
    "kind.red-free": "Red-free",
    "kind.oct": "OCT",
    "kind.visual-field": "Visual field",
    "kind.report": "Report",
    "kind.measurement": "Measurements",
    "eye.OD": "OD (right)",
    "eye.OS": "OS (left)",
    "eye.OU": "OU (both)",
    frames: { one: "{count} B-scan", other: "{count} B-scans" },
  },
  ko: {
    language: "언어",
    loading: "불러오는 중…",
    skip: "본문으로 건너뛰기",
    copy: "복사",
    copied: "복사했습니다.",
    copy_failed: "텍스트를 선택해 복사하세요.",
    "wait.moment": "잠시",

    "nav.label": "주 메뉴",
    "nav.worklist": "작업 목록",
    "nav.users": "사용자",
    "nav.account": "계정",
    "notice.no_password": "일회용 링크로 로그인했으며 아직 비밀번호가 없습니다.",
    "notice.set_password": "계정 페이지에서 비밀번호 설정하기",
    "user.menu": "사용자 메뉴",
    "user.signed_in_as": "로그인 계정",
    "user.no_roles": "아직 역할이 없습니다.",
    "user.sign_out": "로그아웃",
    "notfound.title": "페이지를 찾을 수 없습니다",
    "notfound.text": "이 주소에는 페이지가 없습니다.",

    "error.unexpected": "문제가 발생했습니다. 페이지를 새로 고친 뒤 다시 시도하세요.",
    "error.network": "서버에 연결할 수 없습니다. 네트워크 연결을 확인한 뒤 다시 시도하세요.",
    "error.unauthenticated": "로그인하세요.",
    "error.csrf": "보안상의 이유로 요청이 거부되었습니다. 페이지를 새로 고친 뒤 다시 시도하세요.",
    "error.forbidden": "이 작업을 할 권한이 없습니다.",
    "error.not_found": "찾을 수 없습니다.",
    "error.conflict": "이미 존재합니다: {message}",
    "error.rejected": "서버가 요청을 거부했습니다: {message}",
    "error.unavailable": "서비스를 일시적으로 사용할 수 없습니다. 잠시 후 다시 시도하세요.",
    "error.server": "서버에 문제가 발생했습니다. 다시 시도하고, 계속되면 관리자에게 알려 주세요.",

    "signin.title": "로그인",
    "signin.heading": "readroom 로그인",
    "signin.link_checking": "로그인 링크를 확인하는 중…",
    "signin.invalid_link": "로그인 링크가 잘못되었거나 이미 사용되었거나 만료되었습니다. 관리자에게 새 링크를 요청하세요.",
    "signin.or": "또는",
    "signin.no_methods": "설정된 로그인 방법이 없습니다. 관리자에게 문의하세요.",
    "signin.with_provider": "{name}(으)로 로그인",
    "signin.username": "사용자 이름",
    "signin.password": "비밀번호",
    "signin.totp": "인증 코드",
    "signin.totp_hint": "인증 앱에 표시된 6자리 코드입니다.",
    "signin.submit": "로그인",
    "signin.missing": "사용자 이름과 비밀번호를 입력하세요.",
    "signin.checking": "로그인하는 중…",
    "signin.totp_required": "인증 앱에 표시된 6자리 코드를 입력하세요.",
    "signin.totp_format": "코드는 6자리 숫자입니다.",
    "signin.invalid_totp": "코드가 올바르지 않습니다. 다음 코드가 나오면 다시 시도하세요.",
    "signin.invalid_credentials": "사용자 이름 또는 비밀번호가 올바르지 않습니다.",
    "signin.locked": "로그인 실패가 너무 많아 계정이 잠겼습니다. {wait} 후에 다시 시도하세요.",
    "signin.throttled": "이 네트워크에서 로그인 시도가 너무 많습니다. {wait} 후에 다시 시도하세요.",
    "signin.local_disabled": "이 서버에서는 비밀번호 로그인이 꺼져 있습니다. 기관 로그인을 사용하세요.",
    "signin.expired": "세션이 만료되었습니다. 다시 로그인하세요.",
    "signin.signed_out": "로그아웃했습니다.",
    "signin.oidc_error": "통합 로그인(SSO)에 실패했습니다({code}). 다시 시도하거나 관리자에게 문의하세요.",
    "signin.oidc_error.provider_error": "인증 제공자가 로그인을 완료하지 않았습니다. 다시 시도하세요.",
    "signin.oidc_error.account_disabled": "readroom 계정이 비활성화되어 있습니다. 관리자에게 문의하세요.",
    "signin.oidc_error.unavailable": "로그인을 일시적으로 사용할 수 없습니다. 잠시 후 다시 시도하세요.",
    "signin.oidc_error.sign_in_failed": "통합 로그인(SSO)에 실패했습니다. 다시 시도하거나 관리자에게 문의하세요.",
    "signin.oidc_error.unknown_provider": "이 인증 제공자는 설정되어 있지 않습니다.",
    "signin.oidc_error.oidc_config": "통합 로그인 설정이 올바르지 않습니다. 관리자에게 문의하세요.",
    "signin.oidc_error.provider_unreachable": "인증 제공자에 연결할 수 없습니다. 잠시 후 다시 시도하세요.",
    "signin.oidc_error.invalid_callback": "로그인이 제시간에 완료되지 않았거나 이미 사용되었습니다. 다시 시도하세요.",
    "signin.oidc_error.token_exchange": "인증 제공자가 로그인을 확인하지 않았습니다. 다시 시도하세요.",
    "signin.oidc_error.invalid_id_token": "인증 제공자의 응답을 검증할 수 없습니다.",
    "signin.oidc_error.acr_required": "readroom에 로그인하려면 기관 로그인에서 더 강한 인증(예: 2단계 인증)이 필요합니다.",
    "signin.oidc_error.mfa_required": "readroom에 로그인하려면 기관 로그인에서 다중 인증을 사용해야 합니다.",

    "worklist.title": "작업 목록",
    "worklist.note": "나에게 배정된 증례입니다. 영상은 스트리밍되며 브라우저에 저장되지 않습니다.",
    "worklist.empty": "현재 배정된 증례가 없습니다.",
    "worklist.empty_no_grading_role": "배정된 증례가 없습니다. 판독자 또는 판정자 역할을 받고 증례가 배정되면 여기에 표시됩니다.",
    "worklist.count": "배정된 증례 {count}건",
    "col.case": "증례",
    "col.study": "연구",
    "col.subject": "대상자",
    "col.visit": "방문",
    "col.role": "역할",
    "col.roles": "역할",
    "col.status": "상태",
    "col.due": "마감일",
    "col.exams": "검사",
    "col.user": "사용자",

    "case.title": "증례",
    "case.heading": "증례 {label}",
    "case.breadcrumb": "현재 위치",
    "case.not_found": "증례가 없거나 나에게 배정되지 않은 증례입니다.",
    "case.exam_count": "검사 수",
    "case.access": "내 접근 권한",
    "case.access_view": "영상 및 메타데이터",
    "case.access_metadata": "메타데이터만 (영상 없음)",
    "case.exams": "검사",
    "case.no_exams": "이 증례에는 검사가 없습니다.",
    "case.exam_id": "검사",
    "case.kind": "종류",
    "case.eye": "눈",
    "case.frames": "영상 수",
    "case.size": "크기 (픽셀)",
    "case.spacing": "픽셀 간격",
    "case.spacing_value": "{value} µm",
    "case.assignments": "배정",
    "case.no_assignments": "이 증례에 배정된 사람이 없습니다.",
    "case.images": "영상 뷰어",
    "case.stream_metadata_only": "내 역할로는 증례의 메타데이터만 볼 수 있습니다. 영상은 배정된 판독자와 판정자에게만 표시됩니다.",
    "case.details": "증례 정보",
    "viewer.stage_label": "영상 뷰어. 단축키 목록은 ?를 누르세요.",
    "viewer.tools": "뷰어 도구",
    "viewer.exam": "검사",
    "viewer.tool.pan": "이동",
    "viewer.tool.window_level": "W/L",
    "viewer.tool.measure": "측정",
    "viewer.red_free": "무적색",
    "viewer.invert": "반전",
    "viewer.grid": "ETDRS 격자",
    "viewer.fit": "맞춤",
    "viewer.reset": "초기화",
    "viewer.retry": "다시 시도",
    "viewer.layout.single": "단일",
    "viewer.layout.both_eyes": "OD | OS",
    "viewer.layout.prior": "현재 | 이전",
    "viewer.layout_unavailable": "이 검사에는 옆에 보여 줄 반대쪽 눈이나 이전 방문이 없습니다.",
    "viewer.lossy": "손실",
    "viewer.lossless": "무손실",
    "viewer.badge_lossy_title": "압축 영상입니다. 화면이 바뀌는 중이거나 정확한 프레임을 받는 중입니다. 아직 세부 판독을 하지 마세요.",
    "viewer.badge_lossless_title": "정확한 픽셀입니다. 브라우저가 그려진 프레임을 다시 해시하여 작업 서버의 렌더링과 일치함을 확인했습니다.",
    "viewer.bscan": "B-스캔 {index} / {count}",
    "viewer.wl": "W {window} · L {level} · γ {gamma}",
    "viewer.quality": "{rtt} ms · 손실 {loss} %",
    "viewer.quality_good": "연결 양호",
    "viewer.quality_fair": "연결 보통: 영상이 늦을 수 있습니다",
    "viewer.quality_poor": "연결 불량: 영상이 늦고 흐리게 도착합니다",
    "viewer.quality_unknown": "아직 연결 품질을 측정하지 않았습니다",
    "viewer.connecting": "영상 서버에 연결하는 중…",
    "viewer.opening": "증례를 여는 중 (영상 서버 메모리에서 복호화)…",
    "viewer.reconnecting": "다시 연결하는 중…",
    "viewer.lost": "영상 서버와의 연결이 끊어졌습니다.",
    "viewer.busy": "영상 서버가 바쁩니다.",
    "viewer.unreachable": "영상 서버에 연결할 수 없습니다.",
    "viewer.retrying_in": "{seconds}초 후 다시 시도합니다.",
    "viewer.gave_up": "여러 번 시도했지만 영상 서버에 연결할 수 없습니다.",
    "viewer.refused": "영상 서버가 연결을 거부했습니다: {reason}",
    "viewer.not_allowed": "이 증례는 더 이상 볼 수 없습니다.",
    "viewer.unsupported": "이 브라우저는 영상 스트림을 받을 수 없습니다 (WebRTC 없음). 최신 Chrome, Edge, Firefox 또는 Safari를 사용하세요.",
    "viewer.cannot_verify": "이 페이지에서는 정확한 프레임을 확인할 수 없습니다 (HTTPS 필요). 화면은 손실 상태로 유지됩니다.",
    "viewer.verify_failed": "정확한 프레임이 체크섬과 일치하지 않아 표시하지 않습니다.",
    "viewer.error.too_large": "요청이 너무 큽니다.",
    "viewer.error.bad_json": "요청이 올바른 JSON이 아닙니다.",
    "viewer.error.bad_message": "요청 형식이 잘못되었습니다: {message}",
    "viewer.error.unknown_type": "영상 서버가 알 수 없는 요청입니다.",
    "viewer.error.bad_version": "페이지가 오래되었습니다. 새로 고치세요.",
    "viewer.error.out_of_range": "범위를 벗어났습니다: {message}",
    "viewer.error.not_available": "사용할 수 없습니다: {message}",
    "viewer.error.forbidden": "허용되지 않습니다: {message}",
    "viewer.error.rate_limited": "요청이 너무 많습니다. 천천히 조작하세요.",
    "viewer.error.internal": "영상 서버가 이 화면을 만들지 못했습니다.",
    "viewer.shortcuts": "키보드와 마우스",
    "viewer.key.slice": "이전 / 다음 B-스캔",
    "viewer.key.slice10": "B-스캔 10장 뒤로 / 앞으로",
    "viewer.key.slice_ends": "첫 / 마지막 B-스캔",
    "viewer.key.pan": "왼쪽 / 오른쪽으로 이동",
    "viewer.key.zoom": "축소 / 확대",
    "viewer.key.fit": "화면에 맞춤",
    "viewer.key.one": "1:1 (영상 픽셀 하나당 화면 픽셀 하나)",
    "viewer.key.exam": "이전 / 다음 검사",
    "viewer.key.layout": "배치: 단일, OD | OS, 현재 | 이전",
    "viewer.key.red_free": "무적색 켜기 / 끄기",
    "viewer.key.invert": "반전 켜기 / 끄기",
    "viewer.key.window_level": "W/L 도구 (끌기)",
    "viewer.key.measure": "측정 도구 (끌어서 캘리퍼)",
    "viewer.key.clear": "캘리퍼 지우기",
    "viewer.key.grid": "ETDRS 격자 켜기 / 끄기",
    "viewer.key.reset": "화면 초기화",
    "viewer.key.help": "이 목록 보이기 / 숨기기",
    "viewer.key.right_drag_keys": "오른쪽 끌기",
    "viewer.key.right_drag": "W/L 조절",
    "viewer.key.shift_click_keys": "Shift + 클릭",
    "viewer.key.shift_click": "ETDRS 격자 중심을 중심와에 맞춤",

    "account.title": "계정",
    "account.profile": "프로필",
    "account.username": "사용자 이름",
    "account.display_name": "표시 이름",
    "account.email": "이메일",
    "account.roles": "역할",
    "account.method": "로그인 방법",
    "account.method_password": "비밀번호",
    "account.method_link": "일회용 로그인 링크",
    "account.method_oidc": "통합 로그인 ({provider})",
    "account.session_ends": "세션 최대 종료 시각",
    "account.idle": "비활성 시 자동 로그아웃",
    "account.minutes": "{count}분",
    "account.password": "비밀번호",
    "account.password_note": "비밀번호를 변경합니다. 현재 비밀번호가 필요합니다.",
    "account.password_none": "아직 비밀번호가 없습니다. 링크 없이 로그인할 수 있도록 비밀번호를 설정하세요.",
    "account.password_none_oidc": "기관 로그인으로 로그인합니다. readroom 비밀번호는 선택 사항입니다.",
    "account.current_password": "현재 비밀번호",
    "account.new_password": "새 비밀번호",
    "account.repeat_password": "새 비밀번호 확인",
    "account.password_rule": "{count}자 이상이어야 합니다.",
    "account.change_password": "비밀번호 변경",
    "account.set_password": "비밀번호 설정",
    "account.current_required": "현재 비밀번호를 입력하세요.",
    "account.password_mismatch": "새 비밀번호 두 개가 서로 다릅니다.",
    "account.password_saved": "비밀번호를 저장했습니다.",
    "account.password_refused": "비밀번호가 받아들여지지 않았습니다: {message}",
    "account.totp": "2단계 인증 (TOTP)",
    "account.totp_on": "켜짐: 비밀번호로 로그인할 때 인증 앱의 코드도 입력해야 합니다.",
    "account.totp_off": "꺼짐. 켜면 비밀번호로 로그인할 때마다 인증 앱의 코드를 묻습니다.",
    "account.totp_setup": "설정하기",
    "account.totp_instructions": "인증 앱에 이 계정을 추가하세요. 비밀 키를 입력하거나 otpauth URL을 가져온 다음, 앱에 표시된 코드를 입력하세요.",
    "account.totp_secret": "비밀 키",
    "account.totp_url": "otpauth URL",
    "account.totp_code": "6자리 코드",
    "account.totp_enable": "켜기",
    "account.totp_disable": "끄기",
    "account.totp_enabled": "2단계 인증이 켜졌습니다.",
    "account.totp_disabled": "2단계 인증이 꺼졌습니다.",
    "account.totp_refused": "코드가 받아들여지지 않았습니다: {message}",
    "account.sessions": "세션",
    "account.logout_all": "모든 기기에서 로그아웃",
    "account.logout_all_note": "이 브라우저를 포함해 모든 브라우저와 기기의 세션을 종료합니다.",

    "admin.title": "사용자",
    "admin.forbidden": "관리자만 사용자를 관리할 수 있습니다.",
    "admin.users": "전체 사용자",
    "admin.no_users": "아직 사용자가 없습니다.",
    "admin.create_heading": "새 사용자",
    "admin.create_note": "새 사용자는 먼저 일회용 링크로 로그인한 뒤 직접 비밀번호를 설정합니다.",
    "admin.username_hint": "영문자, 숫자 또는 . - _ @ 1–64자",
    "admin.display_name_required": "표시 이름을 입력하세요.",
    "admin.initial_roles": "역할",
    "admin.study": "연구",
    "admin.all_studies": "전체 연구",
    "admin.study_hint": "판독자, 판정자, 코디네이터에 적용됩니다. 감사자와 관리자는 항상 전체 연구에 적용됩니다.",
    "admin.create": "사용자 만들기",
    "admin.created": "사용자 {username}을(를) 만들었습니다.",
    "admin.username_taken": "이미 사용 중인 사용자 이름입니다.",
    "admin.link_heading": "{username}의 일회용 로그인 링크",
    "admin.link_note": "한 번만 표시됩니다. 신뢰할 수 있는 경로로 사용자에게 전달하세요. 한 번만 사용할 수 있으며 {expires}에 만료됩니다.",
    "admin.link_label": "로그인 링크",
    "admin.link_done": "완료, 링크 숨기기",
    "admin.link_issued": "{username}의 새 로그인 링크를 만들었습니다.",
    "admin.signin_state": "로그인",
    "admin.actions": "작업",
    "admin.password_yes": "비밀번호 설정됨",
    "admin.password_no": "비밀번호 없음",
    "admin.totp_yes": "TOTP 켜짐",
    "admin.totp_no": "TOTP 꺼짐",
    "admin.identities": "인증 제공자: {list}",
    "admin.from_idp": "{source}에서 부여",
    "admin.active": "활성",
    "admin.disabled": "비활성화됨",
    "admin.locked_until": "{time}까지 잠김",
    "admin.revoke": "회수",
    "admin.revoke_label": "{username}의 {role} 역할 회수",
    "admin.revoked": "{username}의 {role} 역할을 회수했습니다.",
    "admin.grant": "부여",
    "admin.grant_label": "{username}에게 역할 부여",
    "admin.granted": "{username}에게 {role} 역할을 부여했습니다.",
    "admin.new_link": "새 로그인 링크",
    "admin.disable": "비활성화",
    "admin.enable": "활성화",
    "admin.disabled_done": "{username}을(를) 비활성화하고 모든 세션을 종료했습니다.",
    "admin.enabled": "{username}을(를) 활성화했습니다.",
    "admin.unlock": "잠금 해제",
    "admin.unlocked": "{username}의 잠금을 해제했습니다.",

    "role.grader": "판독자",
    "role.adjudicator": "판정자",
    "role.coordinator": "코디네이터",
    "role.auditor": "감사자",
    "role.admin": "관리자",
    "role.scope": "{role} · {study}",
    "role.all_studies": "전체 연구",
    "status.assigned": "배정됨",
    "status.in_progress": "진행 중",
    "status.done": "완료",
    "kind.fundus": "안저",
    "kind.red-free": "무적색",
    "kind.oct": "OCT",
    "kind.visual-field": "시야",
    "kind.report": "보고서",
    "kind.measurement": "측정값",
    "eye.OD": "OD (우안)",
    "eye.OS": "OS (좌안)",
    "eye.OU": "OU (양안)",
    frames: "B-스캔 {count}장",
  },
};

const STORAGE_KEY = "readroom.lang";
const LOCALES = { en: "en", ko: "ko-KR" };

function saved() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/** `ko` or `en`: the saved choice, else the browser's language. */
export function currentLanguage() {
  const choice = saved();
  if (choice && MESSAGES[choice]) return choice;
  const preferred = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  for (const tag of preferred) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (MESSAGES[base]) return base;
  }
  return "en";
}

/** Switches and remembers the language. */
export function setLanguage(lang) {
  if (!MESSAGES[lang]) return;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // Private mode without storage: the choice lasts for this page only.
  }
}

/** The BCP 47 locale for Intl formatting. */
export function locale() {
  return LOCALES[currentLanguage()];
}

/** The message `key` with `{name}` placeholders filled; plural forms chosen by `params.count`. */
export function t(key, params = {}) {
  const lang = currentLanguage();
  let text = (MESSAGES[lang] && MESSAGES[lang][key]) ?? MESSAGES.en[key] ?? key;
  if (typeof text === "object") {
    const count = Number(params.count);
    const form = new Intl.PluralRules(locale()).select(Number.isFinite(count) ? count : 0);
    text = text[form] ?? text.other;
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => {
    const value = params[name];
    if (value === undefined || value === null) return "";
    return typeof value === "number" ? formatNumber(value) : String(value);
  });
}

/** Translates static `data-i18n` elements and sets `<html lang>`. */
export function applyTranslations(root = document) {
  document.documentElement.lang = currentLanguage();
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  const select = document.getElementById("lang");
  if (select) select.value = currentLanguage();
}

/** A number in the locale (`maxDigits` fraction digits at most). */
export function formatNumber(value, maxDigits = 0) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: maxDigits }).format(value);
}

/** An RFC 3339 time as a local date and time. */
export function formatDateTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(date);
}

/** A wait in seconds as "2 minutes" / "2분" (or "a moment" when unknown). */
export function formatWait(seconds) {
  if (!Number.isFinite(seconds) || seconds <= 0) return t("wait.moment");
  const [amount, unit] = seconds < 60 ? [Math.ceil(seconds), "second"] : [Math.ceil(seconds / 60), "minute"];
  return new Intl.NumberFormat(locale(), { style: "unit", unit, unitDisplay: "long" }).format(amount);
}

/** A role's name. */
export function roleName(role) {
  return t(`role.${role}`);
}

/** A grant as "Grader · DEMO" (study-scoped) or "Admin" (global roles). */
export function roleLabel(grant) {
  const name = roleName(grant.role);
  if (grant.role === "admin" || grant.role === "auditor") return name;
  return t("role.scope", { role: name, study: grant.study || t("role.all_studies") });
}

/** An assignment status's name. */
export function statusName(status) {
  return t(`status.${status}`);
}

/** An exam kind's name. */
export function kindName(kind) {
  return t(`kind.${kind}`);
}

/** A laterality's name. */
export function eyeName(eye) {
  return t(`eye.${eye}`);
}

/** One exam of a summary, e.g. "OCT OD (128 B-scans)". */
export function examLabel(exam) {
  const eye = exam.eye ? ` ${exam.eye}` : "";
  const frames = exam.kind === "oct" && exam.frames ? ` (${t("frames", { count: exam.frames })})` : "";
  return `${kindName(exam.kind)}${eye}${frames}`;
}

/** A case's exams in one line, repeated labels counted ("3 × Measurements"). */
export function examsSummary(exams) {
  if (!Array.isArray(exams) || !exams.length) return "—";
  const counts = new Map();
  for (const label of exams.map(examLabel)) counts.set(label, (counts.get(label) || 0) + 1);
  return [...counts].map(([label, count]) => (count > 1 ? `${formatNumber(count)} × ${label}` : label)).join(", ");
}
