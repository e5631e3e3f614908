package app

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/static"
)

// Public marks a route anyone may call, signed in or not.
const Public auth.Role = ""

// route is one entry of the route table: method, path, the least role that may
// call it, and its handler. Every route of the application is listed in
// routeTable; the authorization tests are generated from it.
type route struct {
	method  string
	path    string
	role    auth.Role
	handler fiber.Handler
}

// routeTable lists every route with its minimum role. Object-level checks
// (someone else's image) happen in the handlers and answer 404.
func (s *Server) routeTable() []route {
	const (
		get    = fiber.MethodGet
		post   = fiber.MethodPost
		put    = fiber.MethodPut
		delete = fiber.MethodDelete
	)
	return []route{
		// Operations.
		{get, "/healthz", Public, s.healthz},
		{get, "/readyz", Public, s.readyz},

		// Pages.
		{get, "/", Public, s.homePage},
		{get, "/login", Public, s.loginPage},
		{post, "/login", Public, s.loginSubmit},
		{get, "/signup", Public, s.signupPage},
		{post, "/signup", Public, s.signupSubmit},
		{post, "/logout", Public, s.logoutSubmit},
		{get, "/account", auth.RoleContributor, s.accountPage},
		{post, "/account/tokens", auth.RoleContributor, s.tokenCreateSubmit},
		{post, "/account/tokens/:id/revoke", auth.RoleContributor, s.tokenRevokeSubmit},
		{get, "/admin/users", auth.RoleAdmin, s.adminUsersPage},
		{post, "/admin/users/:id/role", auth.RoleAdmin, s.userRoleSubmit},
		{get, "/admin/labels", auth.RoleAdmin, s.adminLabelsPage},
		{post, "/admin/labels", auth.RoleAdmin, s.labelCreateSubmit},
		{post, "/admin/labels/:id", auth.RoleAdmin, s.labelUpdateSubmit},
		{get, "/upload", auth.RoleContributor, s.uploadPage},
		{post, "/upload", auth.RoleContributor, s.uploadSubmit},
		{get, "/uploads", auth.RoleContributor, s.myUploadsPage},
		{get, "/uploads/:id/card", auth.RoleContributor, s.imageCardPartial},
		{get, "/images/:id", auth.RoleContributor, s.imagePage},
		{get, "/images/:id/inference", auth.RoleContributor, s.imageInferencePartial},
		{get, "/images/:id/thumb/:size", auth.RoleContributor, s.imageThumb},
		{get, "/campaigns", auth.RoleContributor, s.campaignsPage},
		{post, "/campaigns", auth.RoleAdmin, s.campaignCreateSubmit},
		{get, "/campaigns/:id/progress", auth.RoleContributor, s.campaignProgressPartial},
		{get, "/review", auth.RoleReviewer, s.reviewPage},
		{get, "/review/stats", auth.RoleReviewer, s.reviewStatsPage},
		{get, "/review/stats.csv", auth.RoleReviewer, s.reviewStatsCSV},
		{get, "/admin/reviews/:id", auth.RoleAdmin, s.flaggedReviewPage},
		{get, "/admin/models", auth.RoleAdmin, s.adminModelsPage},
		{post, "/admin/models", auth.RoleAdmin, s.modelSaveSubmit},
		{get, "/datasets", auth.RolePremium, s.datasetsPage},
		{get, "/datasets/:id", auth.RolePremium, s.datasetPage},
		{get, "/datasets/:id/versions/:n", auth.RolePremium, s.versionPage},
		{get, "/datasets/:id/versions/:n/status", auth.RolePremium, s.versionStatusPartial},
		{get, "/datasets/:id/versions/:n/download", auth.RolePremium, s.versionDownload},
		{post, "/datasets/:id/versions/:n/exports", auth.RolePremium, s.exportCreateSubmit},
		{get, "/datasets/:id/versions/:n/exports/:eid", auth.RolePremium, s.exportPartial},
		{get, "/datasets/:id/versions/:n/exports/:eid/file", auth.RolePremium, s.exportFile},
		{get, "/admin/datasets", auth.RoleAdmin, s.adminDatasetsPage},
		{post, "/admin/datasets", auth.RoleAdmin, s.datasetCreateSubmit},
		{post, "/admin/datasets/:id/versions", auth.RoleAdmin, s.versionPublishSubmit},
		{get, "/admin/moderation", auth.RoleReviewer, s.moderationPage},
		{post, "/admin/moderation", auth.RoleReviewer, s.moderationSubmit},
		{get, "/admin/evaluations", auth.RoleAdmin, s.evaluationsPage},
		{post, "/admin/evaluations", auth.RoleAdmin, s.evaluationCreateSubmit},
		{get, "/admin/evaluations/:id", auth.RoleAdmin, s.evaluationPage},
		{get, "/insights", auth.RoleAdmin, s.insightsPage},
		{get, "/insights/models", auth.RoleAdmin, s.insightsModelsPage},
		{get, jobsUIPrefix, auth.RoleAdmin, s.jobsConsole},
		{get, jobsUIPrefix + "/*", auth.RoleAdmin, s.jobsConsole},
		{post, jobsUIPrefix + "/*", auth.RoleAdmin, s.jobsConsole},
		{put, jobsUIPrefix + "/*", auth.RoleAdmin, s.jobsConsole},
		{delete, jobsUIPrefix + "/*", auth.RoleAdmin, s.jobsConsole},

		// API v1 (API.md).
		{post, "/api/v1/auth/signup", Public, s.apiSignup},
		{post, "/api/v1/auth/login", Public, s.apiLogin},
		{post, "/api/v1/auth/logout", Public, s.apiLogout},
		{get, "/api/v1/me", auth.RoleContributor, s.apiMe},
		{get, "/api/v1/tokens", auth.RoleContributor, s.apiTokenList},
		{post, "/api/v1/tokens", auth.RoleContributor, s.apiTokenCreate},
		{delete, "/api/v1/tokens/:id", auth.RoleContributor, s.apiTokenRevoke},
		{get, "/api/v1/users", auth.RoleAdmin, s.apiUserList},
		{put, "/api/v1/users/:id/role", auth.RoleAdmin, s.apiUserSetRole},
		{get, "/api/v1/labels", auth.RoleContributor, s.apiLabelList},
		{post, "/api/v1/labels", auth.RoleAdmin, s.apiLabelCreate},
		{post, "/api/v1/images", auth.RoleContributor, s.apiImageUpload},
		{get, "/api/v1/images", auth.RoleContributor, s.apiImageList},
		{get, "/api/v1/images/:id", auth.RoleContributor, s.apiImageGet},
		{get, "/api/v1/images/:id/file", auth.RoleContributor, s.apiImageFile},
		{get, "/api/v1/campaigns", auth.RoleContributor, s.apiCampaignList},
		{post, "/api/v1/campaigns", auth.RoleAdmin, s.apiCampaignCreate},
		{get, "/api/v1/models", auth.RoleAdmin, s.apiModelList},
		{post, "/api/v1/models", auth.RoleAdmin, s.apiModelSave},
		{get, "/api/v1/datasets", auth.RolePremium, s.apiDatasetList},
		{post, "/api/v1/datasets", auth.RoleAdmin, s.apiDatasetCreate},
		{get, "/api/v1/datasets/:id", auth.RolePremium, s.apiDatasetGet},
		{post, "/api/v1/datasets/:id/versions", auth.RoleAdmin, s.apiVersionPublish},
		{get, "/api/v1/datasets/:id/versions/:n", auth.RolePremium, s.apiVersionGet},
		{get, "/api/v1/datasets/:id/versions/:n/download", auth.RolePremium, s.versionDownload},
		{post, "/api/v1/datasets/:id/versions/:n/exports", auth.RolePremium, s.apiExportCreate},
		{get, "/api/v1/datasets/:id/versions/:n/exports/:eid", auth.RolePremium, s.apiExportGet},
		{get, "/api/v1/datasets/:id/versions/:n/exports/:eid/file", auth.RolePremium, s.exportFile},
		{post, "/api/v1/review/next", auth.RoleReviewer, s.apiReviewNext},
		{post, "/api/v1/review/:id/renew", auth.RoleReviewer, s.apiReviewRenew},
		{post, "/api/v1/review/:id/release", auth.RoleReviewer, s.apiReviewRelease},
		{post, "/api/v1/review/:id", auth.RoleReviewer, s.apiReviewSubmit},
		{get, "/api/v1/stats/models", auth.RoleAdmin, s.apiModelStats},
		{get, "/api/v1/jobs/:id", auth.RoleContributor, s.apiJobGet},
		{get, "/api/v1/moderation", auth.RoleReviewer, s.apiModerationList},
		{post, "/api/v1/moderation/:id", auth.RoleReviewer, s.apiModerationDecide},
		{get, "/api/v1/insights/classes", auth.RoleAdmin, s.apiClassInsights},
		{post, "/api/v1/evaluations", auth.RoleAdmin, s.apiEvaluationCreate},
		{get, "/api/v1/evaluations", auth.RoleAdmin, s.apiEvaluationList},
		{get, "/api/v1/evaluations/:id", auth.RoleAdmin, s.apiEvaluationGet},
	}
}

// mount installs the middleware and every route of the table.
func (s *Server) mount(reg *prometheus.Registry) {
	a := s.app
	a.Use(recover.New(recover.Config{EnableStackTrace: true}))
	a.Use(requestid.New())
	a.Use(s.observe)
	a.Get(static.Prefix+"*", static.Handler)
	// /metrics is public by design (API.md): bind it to an internal port or
	// protect it at the load balancer in deployment.
	a.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	a.Use(s.limitBody, s.identify, s.csrfProtect)
	for _, r := range s.routes {
		a.Add(r.method, r.path, requireRole(r.role), r.handler)
	}
}
